//! The `sprout` binary: parse, log, dispatch. All work is in the library.

use std::process::ExitCode;

use clap::Parser;
use sprout::cli::{Cli, Command, CreateCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sprout::logging::init(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Create(CreateCommand::ConfigTemplate(args)) => {
            sprout::create::template::write_config_template(&args)
        }
        Command::Create(CreateCommand::ConfigImage(args)) => {
            sprout::create::config_image::run(&args).map(|out| {
                // Data for scripts on stdout; messages went to stderr.
                println!("iso: {}", out.iso.display());
                println!("kubeconfig: {}", out.kubeconfig.display());
                println!("kubeadmin-password: {}", out.kubeadmin_password.display());
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line: "doing X: cause".
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
