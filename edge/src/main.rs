use std::process::ExitCode;

use clap::Parser;
use fas_edge::access::enroll;
use fas_edge::app;
use fas_edge::cli::{AuditCommand, Cli, Command, EnrollCommand};

fn run_enroll(e: &EnrollCommand) -> anyhow::Result<()> {
    match e {
        EnrollCommand::Add(a) => enroll::add(&a.common.common(), &a.opts()).map(|p| {
            println!(
                "enrolled {}: {} face template(s), {} credential(s)",
                p.id,
                p.templates.len(),
                p.credentials.len()
            );
        }),
        EnrollCommand::List(c) => enroll::list(&c.common()).map(|people| {
            for p in &people {
                let cards: Vec<String> = p.credentials.iter().map(|c| c.to_string()).collect();
                println!(
                    "{}\t{}\t{} template(s)\tcards [{}]\tenrolled {}",
                    p.id,
                    p.name.as_deref().unwrap_or("-"),
                    p.templates.len(),
                    cards.join(", "),
                    p.enrolled_ms
                );
            }
            println!("{} enrolled", people.len());
        }),
        EnrollCommand::Remove { id, common } => enroll::remove(&common.common(), id)
            .map(|p| println!("removed {} ({} template(s))", p.id, p.templates.len())),
        EnrollCommand::Export { file, common } => enroll::export(&common.common(), file).map(|n| {
            println!(
                "exported {n} people to {} — it holds their face templates unencrypted: move it, import it, delete it",
                file.display()
            )
        }),
        EnrollCommand::Import { file, common } => enroll::import(&common.common(), file)
            .map(|n| println!("imported {n} people from {}", file.display())),
    }
}

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
        Some(Command::Enroll(e)) => run_enroll(e),
        Some(Command::Lock(a)) => app::lock(&a.common()).map(|name| {
            println!("door locked ({name} actuator)");
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-edge: error: {}", fas_core::report::chain(&*e));
            ExitCode::FAILURE
        }
    }
}
