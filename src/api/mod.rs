//! The server API: one [`executor::Executor`] implements every method once;
//! the gRPC service and the HTTP/JSON gateway (generated from
//! `proto/api.proto` by `build.rs`) are thin adapters over it.

pub mod batch;
mod chunked;
pub mod errors;
pub mod executor;
pub mod gateway;
pub mod grpc;
mod grpc_batch;
pub mod http;
pub mod http_batch;
mod json_walk;
pub mod openapi;

pub use errors::ApiError;
pub use executor::Executor;
