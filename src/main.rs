//! The `sprout` binary: parse, log, dispatch. All work is in the library.

use std::process::ExitCode;

use clap::Parser;
use sprout::cli::{Cli, Command, CreateCommand, IsoCommand, SeedCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sprout::logging::init(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Create(CreateCommand::ConfigTemplate(args)) => {
            sprout::create::template::write_config_template(&args)
        }
        Command::Create(CreateCommand::ImageConfigTemplate(args)) => {
            sprout::create::image::template::write_image_config_template(&args)
        }
        Command::Create(CreateCommand::Image(args)) => {
            sprout::create::image::run(&args).map(|iso| println!("iso: {}", iso.display()))
        }
        Command::Iso(IsoCommand::ShowIgnition(args)) => sprout::iso::show_ignition(&args.iso),
        Command::Seed(SeedCommand::Inspect(args)) => {
            sprout::seed::inspect::run(&args).and_then(|report| {
                // The report goes to stdout even for an unusable seed.
                print!("{}", report.render(args.json)?);
                report.verdict()
            })
        }
        Command::PostPivot(args) => sprout::postpivot::run(&args).map(|out| print!("{out}")),
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
            if sprout::postpivot::flow::is_terminal(&e) {
                // The unit does not restart on this one (W5).
                return ExitCode::from(sprout::postpivot::flow::TERMINAL_EXIT);
            }
            ExitCode::FAILURE
        }
    }
}
