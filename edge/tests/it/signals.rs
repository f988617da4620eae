//! Its own test binary: raising a signal must not race other tests' run loops.

#[cfg(unix)]
#[test]
fn a_signal_sets_the_stop_flag_instead_of_killing() {
    fas_edge::signals::install();
    assert!(!fas_edge::signals::requested());
    unsafe { libc::raise(libc::SIGTERM) };
    assert!(fas_edge::signals::requested());
}
