//! The command actuator against real programs (`sh -c` scripts), and the log-only one.

use std::fs;
use std::time::{Duration, Instant};

use fas_core::decision::{Decision, Reason, Verdict};
use fas_edge::actuator::{
    Actuator, ActuatorConfig, ActuatorError, CommandActuator, CommandConfig, CommandMessage,
};
use fas_edge::policy::{SessionOutcome, Trigger};

/// A fresh directory, removed when the returned guard drops.
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("fas-edge-actuator-{tag}-"))
        .tempdir()
        .unwrap()
}

fn outcome(reason: Reason, aggregate: Option<f32>) -> SessionOutcome {
    SessionOutcome {
        verdict: Verdict::from_reason(reason),
        aggregate,
        scores: vec![0.91, 0.88, 0.93],
        frames_used: 3,
        frames_rejected: 1,
        last_rejection: Some("blur".into()),
        threshold_used: 0.75,
        trigger: Trigger::External,
        started_ms: 1000,
        ended_ms: 1400,
        lockout_until_ms: None,
    }
}

/// `sh -c SCRIPT sh ARGS…`: the script sees ARGS as $1, $2 ….
fn sh(script: &str, args: &[&str], timeout_ms: u64, every_decision: bool) -> CommandActuator {
    let mut a = vec!["-c".to_string(), script.to_string(), "sh".to_string()];
    a.extend(args.iter().map(|s| s.to_string()));
    CommandActuator::new(CommandConfig {
        program: "sh".into(),
        args: a,
        timeout_ms,
        every_decision,
    })
    .unwrap()
}

/// The program sees none of the door's descriptors (a camera opened without
/// `O_CLOEXEC`, as the `v4l` crate opens it, used to reach it) and none of its environment.
#[cfg(target_os = "linux")]
#[test]
fn the_program_inherits_no_descriptor_and_no_environment() {
    use std::ffi::CString;
    let d_dir = scratch("inherit");
    let d = d_dir.path();
    let secret = d.join("camera-stand-in");
    fs::write(&secret, b"frames").unwrap();
    let c = CString::new(secret.to_str().unwrap()).unwrap();
    // Opened the way v4l opens /dev/videoN: no O_CLOEXEC.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert_eq!(
        flags & libc::FD_CLOEXEC,
        0,
        "the stand-in must be inheritable"
    );
    let out = d.join("seen");
    let mut act = sh(
        "{ [ -e /proc/$$/fd/$2 ] && echo LEAKED-FD; env; } > \"$1\"",
        &[out.to_str().unwrap(), &fd.to_string()],
        5000,
        false,
    );
    // The test process's environment has more than PATH (cargo sets CARGO_* at least).
    assert!(std::env::vars().any(|(k, _)| k.starts_with("CARGO")));
    act.apply(&outcome(Reason::AboveThreshold, Some(0.9)))
        .unwrap();
    let seen = fs::read_to_string(&out).unwrap();
    unsafe { libc::close(fd) };
    assert!(!seen.contains("LEAKED-FD"), "{seen}");
    let vars: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split('=').next())
        .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD"))
        .collect();
    assert_eq!(vars, ["PATH"], "{seen}");
    assert!(seen.contains(&format!("PATH={}", fas_edge::actuator::command::CHILD_PATH)));
}

#[test]
fn grant_runs_the_program_with_the_decision_on_stdin() {
    let d_dir = scratch("stdin");
    let d = d_dir.path();
    let file = d.join("msg.json");
    let mut act = sh("cat > \"$1\"", &[file.to_str().unwrap()], 5000, false);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let rep = act
        .apply(&outcome(Reason::AboveThreshold, Some(0.91)))
        .unwrap();
    assert!(rep.unlocked);
    assert_eq!(rep.decision, Decision::Grant);
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let msg: CommandMessage = serde_json::from_str(&text).unwrap();
    assert!(msg.unlock);
    assert_eq!(msg.decision, Decision::Grant);
    assert_eq!(msg.reason, Reason::AboveThreshold);
    assert_eq!(msg.aggregate, Some(0.91));
    assert_eq!(msg.threshold, 0.75);
    assert_eq!(msg.frames_used, 3);
    assert!(msg.time_ms >= before && msg.time_ms < before + 60_000);
    // The wire names are the audit log's.
    assert!(
        text.contains("\"decision\":\"grant\"") && text.contains("\"reason\":\"above_threshold\"")
    );
}

#[test]
fn non_grants_do_not_run_the_program_by_default() {
    let d_dir = scratch("grant-only");
    let d = d_dir.path();
    let file = d.join("ran");
    let mut act = sh("touch \"$1\"", &[file.to_str().unwrap()], 5000, false);
    for r in Reason::ALL
        .into_iter()
        .filter(|&r| r.decision() != fas_core::decision::Decision::Grant)
    {
        let rep = act.apply(&outcome(r, Some(0.2))).unwrap();
        assert!(!rep.unlocked, "{r:?}");
    }
    assert!(!file.exists());
}

#[test]
fn every_decision_sends_unlock_false_for_a_deny() {
    let d_dir = scratch("every");
    let d = d_dir.path();
    let file = d.join("msg.json");
    let mut act = sh("cat > \"$1\"", &[file.to_str().unwrap()], 5000, true);
    let rep = act.apply(&outcome(Reason::CameraLost, None)).unwrap();
    assert!(!rep.unlocked);
    let msg: CommandMessage = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert!(!msg.unlock);
    assert_eq!(
        (msg.decision, msg.reason),
        (Decision::Deny, Reason::CameraLost)
    );
    assert_eq!(msg.aggregate, None);
}

#[test]
fn non_zero_exit_is_an_error_with_stderr() {
    let mut act = sh(
        "cat >/dev/null; echo 'relay controller offline' >&2; exit 3",
        &[],
        5000,
        false,
    );
    let e = act
        .apply(&outcome(Reason::AboveThreshold, Some(0.9)))
        .unwrap_err();
    match &e {
        ActuatorError::CommandFailed { status, stderr, .. } => {
            assert_eq!(status.code(), Some(3));
            assert!(stderr.contains("relay controller offline"), "{stderr}");
        }
        other => panic!("{other}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("command sh") && text.contains("offline"),
        "{text}"
    );
}

#[test]
fn program_that_ignores_stdin_is_fine() {
    let mut act = sh("exit 0", &[], 5000, false);
    assert!(
        act.apply(&outcome(Reason::AboveThreshold, Some(0.9)))
            .unwrap()
            .unlocked
    );
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let d_dir = scratch("timeout");
    let d = d_dir.path();
    let late = d.join("late");
    // The script's own child would create `late` after 1 s if it survived the kill.
    let mut act = sh(
        "(sleep 1; touch \"$1\") & sleep 10",
        &[late.to_str().unwrap()],
        200,
        false,
    );
    let t0 = Instant::now();
    let e = act
        .apply(&outcome(Reason::AboveThreshold, Some(0.9)))
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(
            e,
            ActuatorError::CommandTimeout {
                timeout_ms: 200,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "{took:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!late.exists(), "a grandchild survived the timeout");
}

#[test]
fn missing_program_is_a_spawn_error() {
    let mut act = CommandActuator::new(CommandConfig {
        program: "/nonexistent/door-opener".into(),
        args: vec![],
        timeout_ms: 1000,
        every_decision: false,
    })
    .unwrap();
    let e = act
        .apply(&outcome(Reason::AboveThreshold, Some(0.9)))
        .unwrap_err();
    assert!(matches!(e, ActuatorError::CommandSpawn { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/door-opener"));
}

#[test]
fn built_from_config() {
    let d_dir = scratch("config");
    let d = d_dir.path();
    let file = d.join("msg.json");
    let cfg: ActuatorConfig = serde_json::from_value(serde_json::json!({
        "kind": "command",
        "program": "sh",
        "args": ["-c", "cat > \"$1\"", "sh", file],
        "timeout_ms": 2000
    }))
    .unwrap();
    let mut act = cfg.build().unwrap();
    assert_eq!(act.name(), "command");
    act.lock().unwrap();
    assert!(
        act.apply(&outcome(Reason::AboveThreshold, Some(0.8)))
            .unwrap()
            .unlocked
    );
    assert!(file.exists());
}
