use std::process::ExitCode;

use clap::Parser;
use fas_edge::app;
use fas_edge::cli::{AuditCommand, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.command {
        None => app::run(&cli.run.common.common(), &cli.run.limits()).map(|s| {
            eprintln!(
                "fas-edge: stopped: {}",
                serde_json::to_string(&s).unwrap_or_default()
            );
        }),
        Some(Command::Run(a)) => app::run(&a.common.common(), &a.limits()).map(|s| {
            eprintln!(
                "fas-edge: stopped: {}",
                serde_json::to_string(&s).unwrap_or_default()
            );
        }),
        Some(Command::Calibrate(a)) => app::calibrate(&a.common.common(), &a.opts()).map(|_| ()),
        Some(Command::Audit(AuditCommand::Verify { path })) => app::audit_verify(path),
        Some(Command::Cameras) => app::cameras(),
        Some(Command::CheckConfig(a)) => app::check_config(&a.common()).map(|p| {
            println!(
                "config OK: model {} (bundle version {}, signer {}), threshold {:.4} from {}",
                p.model.name,
                p.model.bundle_version,
                p.model.signer.as_deref().unwrap_or("NONE (development)"),
                p.threshold,
                p.threshold_from
            );
        }),
        Some(Command::Lock(a)) => app::lock(&a.common()).map(|name| {
            println!("door locked ({name} actuator)");
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-edge: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
