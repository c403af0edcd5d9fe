use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Before the server allocates much; without glibc there is nothing to pin.
    let _ = ibstream::cli::allocator::pin_mmap_threshold();
    let cli = ibstream::cli::Cli::parse();
    match ibstream::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
