//! A Wiegand reader on two GPIO input lines, through the GPIO character device: both edges
//! of D0 and D1 with the kernel's monotonic timestamps, assembled and decoded by
//! [`super::wiegand`], delivered to the door as [`TriggerEvent::Credential`]s.

use std::sync::mpsc::Sender;

use anyhow::Result;

use super::WiegandSection;
use crate::trigger::TriggerEvent;

#[cfg(all(feature = "gpio", target_os = "linux"))]
pub fn spawn(w: &WiegandSection, tx: Sender<TriggerEvent>) -> Result<()> {
    use std::time::Duration;

    use anyhow::Context;
    use gpiocdev::line::{EdgeDetection, EdgeKind, EventClock};
    use gpiocdev::Request;

    use super::wiegand::{decode, Assembler, EdgeEvent, Line};

    let req = Request::builder()
        .on_chip(&w.chip)
        .with_consumer("fas-edge wiegand")
        .with_lines(&[w.d0, w.d1])
        .as_input()
        .with_event_clock(EventClock::Monotonic)
        .with_edge_detection(EdgeDetection::BothEdges)
        .request()
        .with_context(|| {
            format!(
                "access.wiegand: cannot watch {} lines {} (D0) and {} (D1) — check access.wiegand.chip, d0 and d1 (`gpioinfo` lists them), that no other driver or process holds them, and the device permissions",
                w.chip.display(),
                w.d0,
                w.d1
            )
        })?;
    let (d0, layouts, timing) = (w.d0, w.all_layouts(), w.timing());
    let chip = w.chip.display().to_string();
    eprintln!(
        "fas-edge: Wiegand reader on {chip} lines {} (D0) / {} (D1)",
        w.d0, w.d1
    );
    std::thread::spawn(move || {
        let mut asm = Assembler::new(timing);
        loop {
            let wait = match asm.deadline_ns() {
                Some(d) => Duration::from_nanos(d.saturating_sub(monotonic_ns()).max(1_000)),
                None => Duration::from_secs(1),
            };
            let frame = match req.wait_edge_event(wait) {
                Ok(true) => match req.read_edge_event() {
                    Ok(ev) => asm.edge(EdgeEvent {
                        t_ns: ev.timestamp_ns,
                        line: if ev.offset == d0 { Line::D0 } else { Line::D1 },
                        falling: ev.kind == EdgeKind::Falling,
                    }),
                    Err(e) => {
                        eprintln!("fas-edge: Wiegand reader {chip}: {e}");
                        None
                    }
                },
                Ok(false) => asm.poll(monotonic_ns()),
                Err(e) => {
                    // The door stays locked without its reader; retry slowly.
                    eprintln!("fas-edge: Wiegand reader {chip}: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                    None
                }
            };
            if let Some(frame) = frame {
                let read = frame
                    .and_then(|bits| decode(&layouts, &bits))
                    .map_err(|e| e.to_string());
                if tx.send(TriggerEvent::Credential(read)).is_err() {
                    break;
                }
            }
        }
    });
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of the kernel's edge timestamps.
#[cfg(all(feature = "gpio", target_os = "linux"))]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(all(feature = "gpio", target_os = "linux")))]
pub fn spawn(w: &WiegandSection, _tx: Sender<TriggerEvent>) -> Result<()> {
    anyhow::bail!(
        "access.wiegand ({}) needs fas-edge built for Linux with the `gpio` feature; use JSON credential lines on trigger.kind = \"socket\" here",
        w.chip.display()
    )
}
