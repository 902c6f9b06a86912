//! Code generation for Rotor's protocol buffers.
//!
//! The `.proto` files are compiled with `protox` (pure Rust, so no `protoc`
//! is needed on the machine) into a descriptor set. We then walk every field
//! of every message and attach serde attributes so the generated structs
//! speak Centrifugo's JSON dialect rather than canonical proto3 JSON:
//!
//! * keys are the proto field names (snake_case);
//! * `bytes` fields hold embedded raw JSON (`crate::proto::rawjson`);
//! * zero values are omitted, except the fields Centrifugo always emits;
//! * `null` decodes as the zero value, as Go's `encoding/json` does.

use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

/// Proto files compiled into the crate, relative to `proto/`.
const PROTOS: &[&str] = &["client.proto"];

/// Fields serialized even when they hold their zero value, as Centrifugo's
/// JSON does. Fully qualified as `.package.Message.field`.
const ALWAYS_EMIT: &[&str] = &[
    ".centrifugal.centrifuge.protocol.ClientInfo.user",
    ".centrifugal.centrifuge.protocol.ClientInfo.client",
    ".centrifugal.centrifuge.protocol.PresenceResult.presence",
    ".centrifugal.centrifuge.protocol.PresenceStatsResult.num_clients",
    ".centrifugal.centrifuge.protocol.PresenceStatsResult.num_users",
    ".centrifugal.centrifuge.protocol.HistoryResult.publications",
    ".centrifugal.centrifuge.protocol.HistoryResult.epoch",
    ".centrifugal.centrifuge.protocol.HistoryResult.offset",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<PathBuf> = PROTOS
        .iter()
        .map(|p| PathBuf::from("proto").join(p))
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(&files, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    let mut config = tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .bytes(".")
        .btree_map(".")
        .type_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]",
        );
    for (path, attr) in field_attributes(&fds) {
        config = config.field_attribute(path, attr);
    }
    config.compile_fds(fds)?;
    Ok(())
}

/// Walks the descriptor set and returns the serde attribute for each field.
fn field_attributes(fds: &FileDescriptorSet) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in &fds.file {
        let prefix = format!(".{}", file.package());
        for msg in &file.message_type {
            message_attributes(&prefix, msg, &mut out);
        }
    }
    out
}

fn message_attributes(prefix: &str, msg: &DescriptorProto, out: &mut Vec<(String, String)>) {
    let name = format!("{prefix}.{}", msg.name());
    let is_map_entry = msg.options.as_ref().is_some_and(|o| o.map_entry());
    if is_map_entry {
        return;
    }
    for nested in &msg.nested_type {
        message_attributes(&name, nested, out);
    }
    for field in &msg.field {
        let path = format!("{name}.{}", field.name());
        let always = ALWAYS_EMIT.contains(&path.as_str());
        let repeated = field.label() == Label::Repeated;
        let mut parts = Vec::new();
        if field.r#type() == Type::Bytes && !repeated {
            parts.push("with = \"crate::proto::rawjson\"".to_string());
        } else {
            parts.push("deserialize_with = \"crate::proto::nullable\"".to_string());
        }
        if !always {
            parts.push("skip_serializing_if = \"crate::proto::is_default\"".to_string());
        }
        out.push((path, format!("#[serde({})]", parts.join(", "))));
    }
}
