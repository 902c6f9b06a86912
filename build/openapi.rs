//! The OpenAPI 3 document of the HTTP API, generated from `api.proto`: one
//! `POST /api/<method>` path per rpc and one schema per message, typed as
//! the JSON the gateway actually speaks (64-bit integers as numbers,
//! `bytes` as any embedded JSON value).

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use serde_json::{Map, Value, json};

use crate::names::{short_type, snake};

fn scalar(field: &FieldDescriptorProto) -> Value {
    match field.r#type() {
        Type::Double | Type::Float => json!({"type": "number", "format": "double"}),
        Type::Int64 | Type::Sint64 | Type::Sfixed64 => {
            json!({"type": "integer", "format": "int64"})
        }
        Type::Uint64 | Type::Fixed64 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        Type::Bool => json!({"type": "boolean"}),
        Type::String => json!({"type": "string"}),
        Type::Bytes => json!({"description": "any JSON value, embedded as is"}),
        Type::Message | Type::Group | Type::Enum => {
            json!({"$ref": format!("#/components/schemas/{}", short_type(field.type_name()))})
        }
    }
}

fn field_schema(msg: &DescriptorProto, field: &FieldDescriptorProto) -> Value {
    if field.label() == Label::Repeated {
        let entry = msg.nested_type.iter().find(|n| {
            n.options.as_ref().is_some_and(|o| o.map_entry())
                && field.type_name().ends_with(&format!(".{}", n.name()))
        });
        if let Some(entry) = entry {
            let value = entry.field.iter().find(|f| f.number() == 2);
            let value = value.map_or(json!({}), scalar);
            return json!({"type": "object", "additionalProperties": value});
        }
        return json!({"type": "array", "items": scalar(field)});
    }
    scalar(field)
}

fn message_schema(msg: &DescriptorProto) -> Value {
    let mut props = Map::new();
    for f in &msg.field {
        props.insert(f.name().to_string(), field_schema(msg, f));
    }
    json!({"type": "object", "properties": props})
}

/// Generates the OpenAPI document as JSON text.
pub fn generate(file: &FileDescriptorProto) -> Result<String, String> {
    let service = file
        .service
        .first()
        .ok_or("api.proto declares no service")?;
    let mut schemas = Map::new();
    for msg in &file.message_type {
        schemas.insert(msg.name().to_string(), message_schema(msg));
    }
    let mut paths = Map::new();
    for m in &service.method {
        let name = snake(m.name());
        let req = short_type(m.input_type());
        let resp = short_type(m.output_type());
        paths.insert(
            format!("/api/{name}"),
            json!({"post": {
                "operationId": m.name(),
                "summary": m.name(),
                "tags": ["Server API"],
                "requestBody": {"required": true, "content": {"application/json": {
                    "schema": {"$ref": format!("#/components/schemas/{req}")}}}},
                "responses": {
                    "200": {"description": "result or API error", "content": {"application/json": {
                        "schema": {"$ref": format!("#/components/schemas/{resp}")}}}},
                    "400": {"description": "body is not JSON"},
                    "401": {"description": "missing or invalid API key"}
                }
            }}),
        );
    }
    let doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Rotor server API",
            "description": "HTTP API of Rotor, compatible with Centrifugo v6",
            "version": env!("CARGO_PKG_VERSION")
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
        },
        "security": [{"ApiKeyAuth": []}]
    });
    serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())
}
