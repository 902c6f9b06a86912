//! The server API: one [`executor::Executor`] implements every method once;
//! the gRPC service and the HTTP/JSON gateway (generated from
//! `proto/api.proto` by `build.rs`) are thin adapters over it.

pub(crate) mod batch;
mod chunked;
pub(crate) mod errors;
pub(crate) mod executor;
pub mod gateway;
pub(crate) mod grpc;
mod grpc_batch;
pub(crate) mod http;
pub(crate) mod http_batch;
mod json_walk;
pub(crate) mod openapi;

pub use errors::ApiError;
pub use executor::Executor;
