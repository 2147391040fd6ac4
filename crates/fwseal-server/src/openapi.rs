//! The OpenAPI document served at `/v1/openapi.json`.

/// `docs/openapi.json`, embedded at build time.
pub const SPEC: &str = include_str!("../../../docs/openapi.json");
