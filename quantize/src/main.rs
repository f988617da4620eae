//! `fas-quantize`: a thin binary over the fas-quantize library; see `cli.rs`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fas-quantize: error: {}", fas_core::report::chain(&*e));
            ExitCode::FAILURE
        }
    }
}
