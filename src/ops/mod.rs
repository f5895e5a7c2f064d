//! Running the process: the API-server client, the Prometheus registry,
//! leader election, the health and metrics HTTP server, and returning
//! freed memory to the OS.

pub mod api_client;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod server;
