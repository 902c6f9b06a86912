//! Listeners, routes and graceful shutdown (placeholder until the server lands).

use crate::config::Config;

/// Runs the server until SIGINT/SIGTERM. Returns a message on failure.
pub async fn serve(_config: Config) -> Result<(), String> {
    Err("server not implemented yet".into())
}
