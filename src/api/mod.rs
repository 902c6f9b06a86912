//! The server API: one [`executor::Executor`] implements every method once;
//! the gRPC service and the HTTP/JSON gateway (generated from
//! `proto/api.proto` by `build.rs`) are thin adapters over it.

pub mod errors;
pub mod executor;
pub mod gateway;
pub mod grpc;
pub mod http;
pub mod openapi;

pub use errors::ApiError;
pub use executor::Executor;
