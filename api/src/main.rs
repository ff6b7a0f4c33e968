use clap::Parser;

// The edge makes a few small allocations per request on every core; glibc's allocator spent a
// tenth of the edge's CPU on them (README: Benchmarks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    keyledger_api::telemetry::init_tracing();
    let cli = keyledger_api::Cli::parse();
    match keyledger_api::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Our errors carry their cause in the message; `{:#}` would repeat it.
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
