//! What the door trusts besides the signed bundle, each piece checked at start (and by
//! `check-config`) before the door can open:
//!
//! - [`calibration`]: `calibration.json`, signed with the device's own key, bound to the
//!   bundle it was made for, and never below the bundle's signed threshold floor;
//! - [`state`]: the newest bundle version this device has run (anti-rollback), and the
//!   operator-signed permit that allows one downgrade;
//! - [`revocation`]: signing keys and bundles an operator has revoked;
//! - [`device_key`]: the device's ed25519 key (`device.key`, mode 0600), made by
//!   `fas-edge calibrate` (or provisioning) the first time it is needed.
//!
//! Expiry (`not_after`) and the detector pins are properties of the bundle and are checked
//! where the model and the detector are loaded.

pub mod calibration;
pub mod device_key;
pub mod revocation;
pub mod state;

/// At most the first 12 characters of a hash or key id, for messages (never panics on a
/// short or non-ASCII string).
pub fn short(s: &str) -> &str {
    s.char_indices().nth(12).map_or(s, |(i, _)| &s[..i])
}

/// Seconds since the Unix epoch now (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_never_panics() {
        assert_eq!(short(""), "");
        assert_eq!(short("ab"), "ab");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("ééééééééééééééé"), "éééééééééééé");
    }
}
