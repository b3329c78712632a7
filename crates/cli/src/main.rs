//! `palisade`: Kubernetes NetworkPolicy made real and visible.

mod agent;
mod analysis;
mod bench;
mod bench_sandbox;
mod commands;
mod demo;
mod input;
mod observe;
mod render;
mod sandbox;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    if let commands::Command::Agent(a) = &cli.command {
        agent::init_logging(a.log_format);
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .with_writer(std::io::stderr)
            .init();
    }
    // Destructors do not run on Ctrl-C or SIGTERM: remove this process's temporary sandboxes, then exit.
    // (The control plane handles both signals itself and tears its sandbox down.)
    let control_plane =
        matches!(&cli.command, commands::Command::Sandbox { what: sandbox::SandboxCommand::ControlPlane { .. } });
    let _ = (!control_plane).then(|| {
        ctrlc::set_handler(|| {
            INTERRUPTED.store(true, Ordering::SeqCst);
            palisade_sandbox::interrupt();
            palisade_cluster::controlplane::stop_temporary();
            std::process::exit(130);
        })
    });
    let result = commands::run(cli);
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The handler is cleaning up (which may be why the command failed); it ends the process.
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
