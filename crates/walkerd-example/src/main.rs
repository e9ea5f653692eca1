//! The notes application: walkerd's server with this crate's walkers, started with one call.

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    match walkerd_server::serve(walkerd_example::walkers()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walkerd-notes: {}", walkerd_server::api::error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
