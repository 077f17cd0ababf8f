//! The `sprout` binary: parse, log, dispatch. All work is in the library.

use std::process::ExitCode;

use clap::Parser;
use sprout::cli::{Cli, Command, CreateCommand, IsoCommand, SeedCommand};
use sprout::host::stdout::{self, BrokenPipe};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sprout::logging::init(cli.verbose, cli.quiet);
    // Only post-pivot's unit tells a terminal failure by its exit status.
    let is_post_pivot = matches!(cli.command, Command::PostPivot(_));
    let result = match cli.command {
        Command::Create(CreateCommand::ConfigTemplate(args)) => {
            sprout::create::template::write_config_template(&(&args).into())
        }
        Command::Create(CreateCommand::ImageConfigTemplate(args)) => {
            sprout::create::image::template::write_image_config_template(&(&args).into())
        }
        Command::Create(CreateCommand::Image(args)) => {
            sprout::create::image::main(&(&args).into(), args.json)
        }
        Command::Iso(IsoCommand::ShowIgnition(args)) => sprout::iso::show_ignition(&args.iso),
        Command::Seed(SeedCommand::Inspect(args)) => {
            sprout::seed::inspect::Options::try_from(&args)
                .and_then(|opts| sprout::seed::inspect::run(&opts))
                .and_then(|report| {
                    // The report goes to stdout even for an unusable seed.
                    stdout::write(&report.render(args.json)?)?;
                    report.verdict()
                })
        }
        Command::PostPivot(args) => sprout::postpivot::main(&(&args).into(), args.json),
        Command::Ibi(args) => {
            sprout::ibi::Options::try_from(&args).and_then(|o| sprout::ibi::run(&o))
        }
        Command::Create(CreateCommand::ConfigImage(args)) => {
            sprout::create::batch::Request::try_from(&args)
                .and_then(|r| sprout::create::batch::main(&r))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output is gone: nobody is left to tell.
        Err(e) if e.is::<BrokenPipe>() => ExitCode::FAILURE,
        Err(e) => {
            // `{:#}` prints the context chain on one line: "doing X: cause".
            tracing::error!("{e:#}");
            if is_post_pivot && sprout::postpivot::flow::is_terminal(&e) {
                // The unit does not restart on this one (W5).
                return ExitCode::from(sprout::postpivot::flow::TERMINAL_EXIT);
            }
            ExitCode::FAILURE
        }
    }
}
