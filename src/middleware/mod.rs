//! Tower middleware in front of the HTTP and gRPC endpoints.

pub mod api_key;
