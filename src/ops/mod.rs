//! Running the process: the Prometheus registry, leader election, the
//! health and metrics HTTP server, and returning freed memory to the OS.

pub mod leader;
pub mod memory;
pub mod metrics;
pub mod server;
