//! Running the process: the API-server client, the Prometheus registry,
//! leader election, the health and metrics HTTP server, returning freed
//! memory to the OS, and the `check` a `helm test` runs.

pub mod api_client;
pub mod check;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod server;
