//! Which camera the door accepts. `/dev/video0` is whatever the kernel numbered first: a
//! `v4l2loopback` device or a USB gadget posing as a webcam can feed the door any frames
//! (a replay that never stood in front of the lens). Each open checks what the device says
//! it is (`VIDIOC_QUERYCAP`: driver, card, bus) against
//!
//! - the config's `camera.expect_driver` / `expect_card` / `expect_bus_info` (exact
//!   matches; `fas-edge cameras` prints them — pin `expect_bus_info` to the USB port);
//! - virtual drivers (`v4l2 loopback`, `vivid`, `vimc`, `vim2m`, `vicodec`), refused
//!   unless `camera.allow_virtual = true` or `expect_driver` names them (test rigs);
//! - the identity accepted first in this run ([`IdentityPin`]): a camera unplugged and
//!   replaced by another device while the door runs is refused (the door stays locked,
//!   its loss already denied and audited) until an operator restarts it.

use std::sync::{Arc, Mutex};

/// What a V4L2 device says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraIdentity {
    pub driver: String,
    pub card: String,
    pub bus_info: String,
}

impl std::fmt::Display for CameraIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "driver \"{}\", card \"{}\", bus \"{}\"",
            self.driver, self.card, self.bus_info
        )
    }
}

/// Drivers whose frames come from software, not a sensor.
pub const VIRTUAL_DRIVERS: [&str; 5] = ["v4l2 loopback", "vivid", "vimc", "vim2m", "vicodec"];

/// The configured expectations (`[camera]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityRule {
    pub driver: Option<String>,
    pub card: Option<String>,
    pub bus_info: Option<String>,
    pub allow_virtual: bool,
}

impl IdentityRule {
    /// Whether the door may use the device `seen`; the error says why not and the fix.
    pub fn check(&self, seen: &CameraIdentity) -> Result<(), String> {
        for (key, want, got) in [
            ("expect_driver", &self.driver, &seen.driver),
            ("expect_card", &self.card, &seen.card),
            ("expect_bus_info", &self.bus_info, &seen.bus_info),
        ] {
            if let Some(want) = want.as_ref().filter(|w| *w != got) {
                return Err(format!(
                    "is {seen}, but camera.{key} is \"{want}\" — another device took this node (check `fas-edge cameras`), or fix camera.{key}"
                ));
            }
        }
        let is_virtual = VIRTUAL_DRIVERS
            .iter()
            .any(|v| v.eq_ignore_ascii_case(&seen.driver));
        if is_virtual && !self.allow_virtual && self.driver.as_deref() != Some(&seen.driver) {
            return Err(format!(
                "is {seen}: a virtual video device, whose frames any program can write — a door uses a real camera; set camera.allow_virtual = true only on a test rig"
            ));
        }
        Ok(())
    }
}

/// The identity the first successful open accepted, shared by every re-open of one run.
#[derive(Debug, Clone, Default)]
pub struct IdentityPin(Arc<Mutex<Option<CameraIdentity>>>);

impl IdentityPin {
    /// Accept `seen` if it is the pinned identity (or pin it, the first time).
    pub fn admit(&self, seen: &CameraIdentity) -> Result<(), String> {
        let mut pinned = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match pinned.as_ref() {
            None => {
                *pinned = Some(seen.clone());
                Ok(())
            }
            Some(p) if p == seen => Ok(()),
            Some(p) => Err(format!(
                "is {seen}, but the door started with {p}: the camera was replaced while it ran — the door stays locked; restart fas-edge to accept a new camera"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(driver: &str, bus: &str) -> CameraIdentity {
        CameraIdentity {
            driver: driver.into(),
            card: "HD Webcam".into(),
            bus_info: bus.into(),
        }
    }

    #[test]
    fn virtual_devices_are_refused_unless_allowed() {
        let real = id("uvcvideo", "usb-0000:01:00.0-1.2");
        let open = IdentityRule::default();
        assert!(open.check(&real).is_ok());
        for driver in ["v4l2 loopback", "vivid", "VIMC"] {
            let fake = id(driver, "platform:v4l2loopback-000");
            let e = open.check(&fake).unwrap_err();
            assert!(e.contains("virtual video device"), "{e}");
            let allowed = IdentityRule {
                allow_virtual: true,
                ..IdentityRule::default()
            };
            assert!(allowed.check(&fake).is_ok());
            let named = IdentityRule {
                driver: Some(driver.into()),
                ..IdentityRule::default()
            };
            assert!(named.check(&fake).is_ok());
        }
    }

    #[test]
    fn expectations_match_exactly() {
        let rule = IdentityRule {
            driver: Some("uvcvideo".into()),
            bus_info: Some("usb-0000:01:00.0-1.2".into()),
            ..IdentityRule::default()
        };
        assert!(rule.check(&id("uvcvideo", "usb-0000:01:00.0-1.2")).is_ok());
        // The same model of camera (or a gadget posing as one) on another port.
        let e = rule
            .check(&id("uvcvideo", "usb-0000:01:00.0-1.3"))
            .unwrap_err();
        assert!(e.contains("camera.expect_bus_info"), "{e}");
        let e = rule
            .check(&id("gspca", "usb-0000:01:00.0-1.2"))
            .unwrap_err();
        assert!(e.contains("camera.expect_driver"), "{e}");
    }

    #[test]
    fn a_replaced_camera_is_refused_for_the_rest_of_the_run() {
        let pin = IdentityPin::default();
        let first = id("uvcvideo", "usb-1");
        pin.admit(&first).unwrap();
        pin.clone().admit(&first).unwrap();
        let e = pin.admit(&id("uvcvideo", "usb-2")).unwrap_err();
        assert!(e.contains("replaced while it ran"), "{e}");
        // The original comes back: accepted again.
        pin.admit(&first).unwrap();
    }
}
