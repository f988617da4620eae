use std::process::ExitCode;

use clap::Parser;
use fas_train::app;
use fas_train::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Import(a) => app::import(a),
        Command::Prepare(a) => app::prepare(a),
        Command::Tasks(a) => app::tasks(a),
        Command::Train(a) => app::train(a),
        Command::Eval(a) => app::evaluate(a),
        Command::Translate(a) => app::translate(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-train: error: {}", fas_core::report::chain(&*e));
            ExitCode::FAILURE
        }
    }
}
