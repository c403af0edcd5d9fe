use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ibstream::cli::Cli::parse();
    match ibstream::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
