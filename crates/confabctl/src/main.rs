//! `confabctl`: see the library's docs, or `confabctl --help`.

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut out = std::io::stdout();
    match confabctl::run(std::env::args_os(), &mut out).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("confabctl: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
