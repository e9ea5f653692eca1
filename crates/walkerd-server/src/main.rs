//! The `walkerd` binary: the server with the demo walkers.

use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let mut walkers = walkerd_server::Registry::new();
    walkerd_server::demo::register(&mut walkers);
    match walkerd_server::serve(walkers).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be set up yet (bad settings), so say it plainly on stderr.
            eprintln!("walkerd: {}", walkerd_server::api::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
