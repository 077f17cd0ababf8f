//! Validating `--json` documents against the schemas in docs/schema/.
#![allow(dead_code)]

use serde_json::Value;

/// The schema `docs/schema/<name>.v1.json`, parsed.
pub fn load(name: &str) -> Value {
    let path = super::repo().join(format!("docs/schema/{name}.v1.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Panics, naming every violation, unless `doc` is valid under the schema
/// `docs/schema/<name>.v1.json`.
pub fn assert_valid(name: &str, doc: &Value) {
    let schema = load(name);
    let url = schema["$id"].as_str().unwrap().to_string();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&url, schema).unwrap();
    let index = compiler
        .compile(&url, &mut schemas)
        .unwrap_or_else(|e| panic!("docs/schema/{name}.v1.json does not compile: {e:#}"));
    if let Err(e) = schemas.validate(doc, index) {
        panic!(
            "the document is not valid under docs/schema/{name}.v1.json: {e:#}\n{}",
            serde_json::to_string_pretty(doc).unwrap()
        );
    }
}

/// Panics unless `doc` is invalid under the schema (the schema has teeth).
pub fn assert_invalid(name: &str, doc: &Value) {
    let schema = load(name);
    let url = schema["$id"].as_str().unwrap().to_string();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource(&url, schema).unwrap();
    let index = compiler.compile(&url, &mut schemas).unwrap();
    assert!(
        schemas.validate(doc, index).is_err(),
        "docs/schema/{name}.v1.json accepts a document it should refuse:\n{doc:#}"
    );
}
