//! `plinth`: the command-line front of Plinth. Thin by design: it parses arguments, reads
//! files, calls the libraries and maps their results to output and exit codes.
//!
//! Exit codes: 0 success, 1 the input is invalid (or a plan cannot be met), 2 a usage or
//! I/O error.

mod client;
mod commands;
mod input;
mod output;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Plinth builds the node infrastructure of Kubernetes clusters on a virtualization pool or
/// on bare metal, and tells which of the two suits your estate.
#[derive(Debug, Parser)]
#[command(name = "plinth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(commands::validate::Args),
    Explain(commands::explain::Args),
    Schema(commands::schema::Args),
    Plan(commands::plan::Args),
    Simulate(commands::simulate::Args),
    Compare(commands::compare::Args),
    Agent(commands::agent::Args),
    Certs(commands::certs::Args),
    Calibrate(commands::calibrate::Args),
    Image(commands::image::Args),
    Run(commands::run::Args),
    Hosts(commands::hosts::Args),
    Serve(commands::serve::Args),
    Token(commands::serve::TokenArgs),
    Apply(commands::apply::Args),
    Get(commands::get::GetArgs),
    Describe(commands::get::DescribeArgs),
    Delete(commands::get::DeleteArgs),
    Wait(commands::get::WaitArgs),
    Logs(commands::logs::Args),
    Events(commands::get::EventsArgs),
    Maintenance(commands::maintenance::Args),
    Upgrade(commands::upgrade::Args),
    Drs(commands::drs::Args),
}

/// How a command ended, mapped to the documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the input is invalid.
    Invalid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Schema(args) => commands::schema::run(&args),
        Command::Plan(args) => commands::plan::run(&args),
        Command::Simulate(args) => commands::simulate::run(&args),
        Command::Compare(args) => commands::compare::run(&args),
        Command::Agent(args) => commands::agent::run(&args),
        Command::Certs(args) => commands::certs::run(&args),
        Command::Calibrate(args) => commands::calibrate::run(&args),
        Command::Image(args) => commands::image::run(&args),
        Command::Run(args) => commands::run::run(&args),
        Command::Hosts(args) => commands::hosts::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Token(args) => commands::serve::token(&args),
        Command::Apply(args) => commands::apply::run(&args),
        Command::Get(args) => commands::get::get(&args),
        Command::Describe(args) => commands::get::describe(&args),
        Command::Delete(args) => commands::get::delete(&args),
        Command::Wait(args) => commands::get::wait(&args),
        Command::Logs(args) => commands::logs::run(&args),
        Command::Events(args) => commands::get::events(&args),
        Command::Maintenance(args) => commands::maintenance::run(&args),
        Command::Upgrade(args) => commands::upgrade::run(&args),
        Command::Drs(args) => commands::drs::run(&args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) if output::is_closed_stdout(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::stderr(output::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
