//! `fas-testbed`: the guest half of the real-device test (see `fas_boards::testbed`).
//! It runs inside the QEMU guest next to fas-edge and reports [`Event`]s on the console:
//!
//! - `setup`: loops vivid's video output (`/dev/video1`) into its capture (`/dev/video0`).
//! - `play PLAN_DIR [AUDIT_LOG]`: streams the rendered sessions into the output node, an
//!   empty scene between them; unplugs and replugs the camera where the plan says so; with
//!   fas-edge's audit log and a plan that holds sessions, keeps each presentation up until
//!   the door has decided on it.
//! - `watch-gpio --line N`: reports every change of the relay line (kernel GPIO debugfs).
//! - `fb-check DEV`: reports how much of the framebuffer was written.
//! - `booted`, `edge-exit RUNNING STATUS`, `error WHAT`, `done`: plain events.

use std::process::ExitCode;

use fas_boards::testbed::events::{now_ms, Event};

#[cfg(target_os = "linux")]
mod vivid;

/// The events of a `fas-edge --json` log.
fn edge_events(log: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect())
}

/// The `decision/reason` of every decision event in a `fas-edge --json` log.
fn edge_decisions(log: &str) -> anyhow::Result<Vec<String>> {
    Ok(edge_events(log)?
        .into_iter()
        .filter(|v| v["event"] == "decision")
        .map(|v| {
            format!(
                "{}/{}",
                v["decision"].as_str().unwrap_or("?"),
                v["reason"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

fn emit(e: Event) {
    println!("{}", e.line());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run(&argv);
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            emit(Event::Error {
                t_ms: now_ms(),
                what: format!("fas-testbed {}: {e:#}", argv.join(" ")),
            });
            ExitCode::FAILURE
        }
    }
}

fn run(argv: &[&str]) -> anyhow::Result<()> {
    match argv {
        ["booted"] => {
            let mut devices: Vec<String> = std::fs::read_dir("/dev")?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("video") || n.starts_with("gpiochip") || n.starts_with("fb"))
                .collect();
            devices.sort();
            emit(Event::Booted { t_ms: now_ms(), devices });
            Ok(())
        }
        ["edge-exit", running, status] => {
            emit(Event::EdgeExit {
                t_ms: now_ms(),
                running: *running == "1",
                status: status.parse().unwrap_or(-1),
            });
            Ok(())
        }
        ["error", what @ ..] => {
            emit(Event::Error { t_ms: now_ms(), what: what.join(" ") });
            Ok(())
        }
        ["trigger-ready", log] => {
            let decisions = edge_decisions(log)?.len() as u32;
            emit(Event::TriggerReady { t_ms: now_ms(), decisions });
            Ok(())
        }
        ["trigger-report", log] => {
            let events = edge_events(log)?;
            let find = |name: &str| events.iter().find(|v| v["event"] == name);
            emit(Event::TriggerReport {
                t_ms: now_ms(),
                decisions: edge_decisions(log)?,
                camera: find("ready").and_then(|v| v["camera"].as_str()).unwrap_or("").to_string(),
                frames: find("stopped").and_then(|v| v["frames"].as_u64()).unwrap_or(0),
            });
            Ok(())
        }
        ["done"] => {
            emit(Event::Done { t_ms: now_ms() });
            Ok(())
        }
        ["fb-check", dev] => {
            let data = std::fs::read(dev)?;
            let nonzero = data.iter().filter(|&&b| b != 0).count() as u64;
            emit(Event::Framebuffer { t_ms: now_ms(), bytes: data.len() as u64, nonzero });
            Ok(())
        }
        ["watch-gpio", "--line", line] => watch_gpio(line.parse()?),
        #[cfg(target_os = "linux")]
        ["setup"] => vivid::setup().map(|_| ()),
        #[cfg(target_os = "linux")]
        ["play", dir] => vivid::play(std::path::Path::new(dir), None),
        #[cfg(target_os = "linux")]
        ["play", dir, audit] => {
            vivid::play(std::path::Path::new(dir), Some(std::path::Path::new(audit)))
        }
        _ => anyhow::bail!(
            "usage: fas-testbed booted | setup | play PLAN_DIR [AUDIT_LOG] | watch-gpio --line N | fb-check DEV | edge-exit RUNNING STATUS | trigger-ready LOG | trigger-report LOG | error WHAT | done"
        ),
    }
}

/// The state of `line` of the first GPIO chip in the kernel's debugfs listing: `Some(true)`
/// when requested and driven high, `Some(false)` when low, `None` when not requested.
fn gpio_state(debugfs: &str, line: u32) -> Option<bool> {
    let mut base = None;
    for l in debugfs.lines() {
        if l.starts_with("gpiochip") {
            if base.is_some() {
                break; // only the first chip
            }
            // "gpiochip0: GPIOs 512-519, parent: ..."
            base = l
                .split("GPIOs ")
                .nth(1)
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.trim().parse::<u32>().ok());
            continue;
        }
        let Some(b) = base else { continue };
        let name = format!("gpio-{} ", b + line);
        if l.trim_start().starts_with(&name) {
            return Some(l.trim_end().ends_with("hi"));
        }
    }
    None
}

fn watch_gpio(line: u32) -> anyhow::Result<()> {
    let mut last = false;
    loop {
        let text = std::fs::read_to_string("/sys/kernel/debug/gpio")?;
        let high = gpio_state(&text, line).unwrap_or(false);
        if high != last {
            emit(Event::Gpio {
                t_ms: now_ms(),
                line,
                high,
            });
            last = high;
        }
        std::thread::sleep(std::time::Duration::from_millis(40));
    }
}

#[cfg(test)]
mod tests {
    use super::gpio_state;

    #[test]
    fn reads_the_relay_line_from_gpio_debugfs() {
        let text = "gpiochip0: GPIOs 512-519, parent: amba/9030000.pl061, 9030000.pl061:\n gpio-512 (                    |fas-edge            ) out hi \n gpio-515 (                    |PWR                 ) in  lo IRQ ACTIVE LOW\n\ngpiochip1: GPIOs 520-527, parent: x\n gpio-520 (  |y  ) out hi\n";
        assert_eq!(gpio_state(text, 0), Some(true));
        assert_eq!(gpio_state(text, 3), Some(false));
        assert_eq!(gpio_state(text, 1), None);
        assert_eq!(
            gpio_state(&text.replace("out hi \n gpio-515", "out lo \n gpio-515"), 0),
            Some(false)
        );
        // A line of the second chip is not the relay.
        assert_eq!(gpio_state(text, 8), None);
    }
}
