//! Code generation for Rotor's protocol buffers.
//!
//! The `.proto` files are compiled with `protox` (pure Rust, so no `protoc`
//! is needed on the machine) into a descriptor set, written to `OUT_DIR` for
//! gRPC reflection. From that one descriptor set we generate:
//!
//! * the prost structs and the tonic server of `api.proto`, with serde
//!   attributes for Centrifugo's JSON dialect ([`serde_attrs`]);
//! * the server API adapters: method table, HTTP routes, gRPC service impl,
//!   batch and legacy dispatch ([`gateway`]);
//! * the OpenAPI 3 document of the HTTP API ([`openapi`]);
//! * the prost structs, tonic client and (for tests) server of
//!   `proxy.proto`, with the same serde pass so HTTP proxy bodies are
//!   Centrifugo's JSON.
//!
//! `unistream.proto` (the uni gRPC transport) is compiled on its own: only
//! its tonic server, whose messages are the client protocol's (it is a
//! field-compatible subset) and whose stream items are already-encoded Push
//! bytes ([`compile_unistream`]).

use std::path::PathBuf;

#[path = "build/gateway.rs"]
mod gateway;
#[path = "build/names.rs"]
mod names;
#[path = "build/openapi.rs"]
mod openapi;

#[path = "build/serde_attrs.rs"]
mod serde_attrs;

/// Proto files compiled into the crate, relative to `proto/`.
const PROTOS: &[&str] = &["client.proto", "api.proto", "proxy.proto"];

/// Package of the server API.
const API_PACKAGE: &str = "centrifugal.centrifugo.api";

/// Package of the proxy protocol (Rotor is its client, so it stays out of
/// the descriptor set served by gRPC reflection).
const PROXY_PACKAGE: &str = "centrifugal.centrifugo.proxy";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<PathBuf> = PROTOS
        .iter()
        .map(|p| PathBuf::from("proto").join(p))
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");

    let fds = protox::compile(&files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut served = fds.clone();
    served.file.retain(|f| f.package() != PROXY_PACKAGE);
    std::fs::write(
        out_dir.join("descriptor.bin"),
        prost::Message::encode_to_vec(&served),
    )?;

    let api = fds
        .file
        .iter()
        .find(|f| f.package() == API_PACKAGE)
        .ok_or("api.proto not in the descriptor set")?;
    std::fs::write(out_dir.join("api_gateway.rs"), gateway::generate(api)?)?;
    std::fs::write(out_dir.join("openapi.json"), openapi::generate(api)?)?;

    let mut config = tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // No `Client::connect(dst)` constructors: the proxy service has an
        // rpc named `Connect`. Clients are built with `new(channel)`.
        .build_transport(false)
        // Methods a server does not implement answer UNIMPLEMENTED (what a
        // backend serving only some proxy hooks wants); the API's service
        // impl is generated for every rpc, so it never relies on these.
        .generate_default_stubs(true)
        .bytes(".")
        .btree_map(".")
        .type_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        );
    for (path, attr) in serde_attrs::field_attributes(&fds) {
        config = config.field_attribute(path, attr);
    }
    config.compile_fds(fds)?;
    compile_unistream()?;
    Ok(())
}

/// The `CentrifugoUniStream` server. Its request is decoded straight into
/// the client protocol's `ConnectRequest`, and its responses are the bytes
/// of a client protocol `Push` written as they are, through the codec in
/// `src/transport/uni_grpc.rs`: no message of its own is generated.
fn compile_unistream() -> Result<(), Box<dyn std::error::Error>> {
    let file = PathBuf::from("proto").join("unistream.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .build_transport(false)
        .codec_path("crate::transport::uni_grpc::UniCodec")
        .extern_path(".centrifugal.centrifugo.unistream", "crate::proto::client")
        .extern_path(
            ".centrifugal.centrifugo.unistream.Push",
            "crate::transport::uni_grpc::RawPush",
        )
        .compile_fds(fds)?;
    Ok(())
}
