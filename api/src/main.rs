use clap::Parser;

// The edge makes a few small allocations per request on every core; glibc's allocator spent a
// tenth of the edge's CPU on them (README: Benchmarks). Built without transparent huge pages
// (`no_thp`): a projection batch allocates and frees a few hundred MB, and with huge pages each
// reuse faulted in and zeroed 2 MB at a time, a sixth of a rebuild's time in this process.
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
