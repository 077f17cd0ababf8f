//! The `sprout` binary: parse, log, dispatch. All work is in the library.

use std::process::ExitCode;

use clap::Parser;
use sprout::cli::{Cli, Command, CreateCommand, IsoCommand, SeedCommand};

/// The library's plain options from the command line.
fn ibi_options(a: &sprout::cli::IbiArgs) -> anyhow::Result<sprout::ibi::Options> {
    let mut o = sprout::ibi::Options::new(&a.configuration_file);
    o.root = a.root.clone();
    o.dry_run = a.dry_run;
    o.restart = a.restart;
    o.progress_json = a.progress_json.as_deref().map(str::parse).transpose()?;
    o.keep_seed_agent = a.keep_seed_agent;
    o.workdir = a.workdir.clone();
    Ok(o)
}

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
        Command::Ibi(args) => ibi_options(&args).and_then(|o| sprout::ibi::run(&o)),
        Command::PostPivot(args) => sprout::postpivot::run(&args)
            .map(|found| println!("configuration: {}", found.dir.display())),
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
