//! Turning manifest text into objects: multi-document YAML or JSON, `List` kinds, with every problem located.
//!
//! The caller reads files; this module only sees a source name and its text.

use std::fmt;

use serde_json::Value;

use crate::model::Object;

/// Where an object came from: `policies.yaml#2` (the second document), `all.json#1 items[3]` inside a List.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub source: String,
    /// 1-based document number within the source; 0 when the whole source is meant.
    pub document: usize,
    /// Index inside a `List`'s `items`.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if self.document > 0 {
            write!(f, "#{}", self.document)?;
        }
        if let Some(i) = self.item {
            write!(f, " items[{i}]")?;
        }
        Ok(())
    }
}

/// An object and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub origin: Origin,
    pub value: T,
}

/// A problem that kept a document from loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct LoadError {
    pub origin: Origin,
    pub message: String,
}

/// A document that loaded but is not something the engine models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub origin: Origin,
    pub kind: String,
    pub name: String,
    /// The document, for tools that model more kinds (workloads, Services).
    pub value: Value,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: skipped {} {:?}: kind not modelled", self.origin, self.kind, self.name)
    }
}

/// Everything read from one or more sources.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub objects: Vec<Located<Object>>,
    pub skipped: Vec<Skipped>,
    pub errors: Vec<LoadError>,
    /// ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy and Node objects.
    pub cluster_objects: Vec<Located<crate::cnp::ClusterObject>>,
}

impl Loaded {
    pub fn extend(&mut self, other: Loaded) {
        self.objects.extend(other.objects);
        self.skipped.extend(other.skipped);
        self.errors.extend(other.errors);
        self.cluster_objects.extend(other.cluster_objects);
    }
}

/// Parses the text of one source (file, stdin, case step) into located objects. Never panics.
pub fn load_str(source: &str, text: &str) -> Loaded {
    let mut out = Loaded::default();
    let docs = match parse_documents(text) {
        Ok(docs) => docs,
        Err(message) => {
            out.errors
                .push(LoadError { origin: Origin { source: source.to_owned(), document: 0, item: None }, message });
            return out;
        }
    };
    for (i, doc) in docs.into_iter().enumerate() {
        let origin = Origin { source: source.to_owned(), document: i + 1, item: None };
        load_value(origin, doc, &mut out);
    }
    out
}

/// Loads one already-parsed document (used for manifests embedded in other files, such as conformance cases).
pub fn load_value(origin: Origin, doc: Value, out: &mut Loaded) {
    let doc = match doc {
        Value::Null => return,
        Value::Object(_) => doc,
        other => {
            out.errors.push(LoadError {
                origin,
                message: format!("expected a Kubernetes object (a mapping), found {}", type_name(&other)),
            });
            return;
        }
    };
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
    if kind.is_empty() {
        out.errors.push(LoadError { origin, message: "Object 'Kind' is missing".to_owned() });
        return;
    }
    if kind.ends_with("List") && doc.get("items").is_some() {
        let Some(items) = doc.get("items").and_then(Value::as_array) else {
            out.errors.push(LoadError { origin, message: "items: expected a list".to_owned() });
            return;
        };
        // An item without `kind` takes the list's kind minus `List` (`PodList` items are Pods).
        let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_owned);
        for (i, item) in items.iter().enumerate() {
            let o = Origin { item: Some(i), ..origin.clone() };
            let mut item = item.clone();
            if let (Some(k), Some(m)) = (&item_kind, item.as_object_mut())
                && !m.contains_key("kind")
            {
                m.insert("kind".into(), Value::String(k.clone()));
            }
            load_value(o, item, out);
        }
        return;
    }
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_owned();
    if crate::cnp::CLUSTER_KINDS.contains(&kind.as_str()) {
        let api_version = api_version.to_owned();
        match crate::cnp::decode_cluster_object(&kind, &api_version, doc) {
            Ok(value) => out.cluster_objects.push(Located { origin, value }),
            Err(message) => out.errors.push(LoadError { origin, message: format!("{kind} {name:?}: {message}") }),
        }
        return;
    }
    let expected = match kind.as_str() {
        "Namespace" | "Pod" => "v1",
        "NetworkPolicy" => "networking.k8s.io/v1",
        _ => {
            out.skipped.push(Skipped { origin, kind, name, value: doc });
            return;
        }
    };
    // NetworkPolicy was served as extensions/v1beta1 with the same schema; List items often omit apiVersion.
    let accepted = api_version == expected
        || api_version.is_empty()
        || (kind == "NetworkPolicy" && api_version == "extensions/v1beta1");
    if !accepted {
        out.errors.push(LoadError {
            origin,
            message: format!("{kind} {name:?}: apiVersion {api_version:?} is not supported (expected {expected:?})"),
        });
        return;
    }
    let decoded = match kind.as_str() {
        "Namespace" => decode(doc).map(Object::Namespace),
        "Pod" => decode(doc).map(|p| Object::Pod(Box::new(p))),
        _ => decode(doc).map(Object::NetworkPolicy),
    };
    match decoded {
        Ok(object) => {
            if let Some(message) = metadata_problem(&object) {
                out.errors.push(LoadError { origin, message: format!("{kind} {name:?}: {message}") });
            } else {
                out.objects.push(Located { origin, value: object });
            }
        }
        Err(message) => out.errors.push(LoadError { origin, message: format!("{kind} {name:?}: {message}") }),
    }
}

fn metadata_problem(object: &Object) -> Option<String> {
    object
        .metadata()
        .name
        .as_deref()
        .is_none_or(str::is_empty)
        .then(|| "metadata.name: Required value: name or generateName is required".to_owned())
}

fn decode<T: serde::de::DeserializeOwned>(doc: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." { inner } else { format!("{path}: {inner}") }
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Splits a source into documents: a JSON stream when it starts with `{` or `[`, a YAML stream otherwise.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut docs = Vec::new();
        for doc in serde_json::Deserializer::from_str(trimmed).into_iter::<Value>() {
            match doc {
                Ok(Value::Array(items)) => docs.extend(items),
                Ok(v) => docs.push(v),
                Err(e) => {
                    return Err(format!("line {} column {}: invalid JSON: {e}", e.line(), e.column()));
                }
            }
        }
        return Ok(docs);
    }
    serde_saphyr::from_multiple::<Value>(text).map_err(|e| {
        let msg = first_line(&e.to_string());
        match e.location() {
            Some(loc) if loc.line() > 0 => {
                format!("line {} column {}: invalid YAML: {msg}", loc.line(), loc.column())
            }
            _ => format!("invalid YAML: {msg}"),
        }
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_documents_lists_and_skips_other_kinds() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: a}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\n";
        let l = load_str("f.yaml", text);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.objects.len(), 2);
        assert_eq!(l.objects[1].origin.to_string(), "f.yaml#2 items[0]");
        assert_eq!(l.skipped[0].to_string(), "f.yaml#2 items[1]: skipped Deployment \"d\": kind not modelled");
    }

    #[test]
    fn json_streams_load() {
        let l = load_str("f.json", r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#);
        assert_eq!(l.objects.len(), 1);
    }

    #[test]
    fn broken_yaml_has_line_and_column() {
        let l = load_str("bad.yaml", "kind: Pod\nmetadata:\n  name: [unclosed\n");
        assert_eq!(l.errors.len(), 1);
        let msg = l.errors[0].to_string();
        assert!(msg.starts_with("bad.yaml: line "), "{msg}");
        assert!(msg.contains("column"), "{msg}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - port: {a: 1}\n";
        let l = load_str("p.yaml", text);
        let msg = l.errors[0].to_string();
        assert!(msg.starts_with("p.yaml#1: NetworkPolicy \"p\": spec.ingress[0].ports[0].port: "), "{msg}");
    }

    #[test]
    fn missing_name_and_kind_are_errors() {
        let l = load_str("x.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {}\n---\nfoo: bar\n---\n- 1\n");
        let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "x.yaml#1: Pod \"\": metadata.name: Required value: name or generateName is required",
                "x.yaml#2: Object 'Kind' is missing",
                "x.yaml#3: expected a Kubernetes object (a mapping), found a list",
            ]
        );
    }
}
