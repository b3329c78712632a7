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
///
/// A document that cannot be parsed loses only itself: it is reported with its number and the line and
/// column in the source, and the other documents load (as kubectl reads a stream).
pub fn load_str(source: &str, text: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, doc) in parse_stream(text).into_iter().enumerate() {
        let origin = Origin { source: source.to_owned(), document: i + 1, item: None };
        match doc {
            Ok(doc) => load_value(origin, doc, &mut out),
            Err(message) => out.errors.push(LoadError { origin, message }),
        }
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

/// Splits a source into documents, all or nothing: the first document that cannot be parsed is the error.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    parse_stream(text).into_iter().collect()
}

/// Splits a source into documents, each parsed on its own: a JSON stream when it starts with `{` or `[` (a
/// top-level array gives one document per item; parsing stops at the first error), a YAML stream otherwise.
pub fn parse_stream(text: &str) -> Vec<Result<Value, String>> {
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut docs = Vec::new();
        for doc in serde_json::Deserializer::from_str(trimmed).into_iter::<Value>() {
            match doc {
                Ok(Value::Array(items)) => docs.extend(items.into_iter().map(Ok)),
                Ok(v) => docs.push(Ok(v)),
                Err(e) => {
                    let skipped = text.len() - trimmed.len();
                    let line = e.line() + text[..skipped].matches('\n').count();
                    docs.push(Err(format!("line {line} column {}: invalid JSON: {e}", e.column())));
                    break;
                }
            }
        }
        return docs;
    }
    yaml_documents(text)
        .into_iter()
        .map(|(first_line, doc)| {
            serde_saphyr::from_str::<Value>(&flow_tabs_as_spaces(&doc)).map_err(|e| {
                let msg = first_line_of(&e.to_string());
                match e.location() {
                    Some(loc) if loc.line() > 0 => format!(
                        "line {} column {}: invalid YAML: {msg}",
                        loc.line() as usize + first_line - 1,
                        loc.column()
                    ),
                    _ => format!("invalid YAML: {msg}"),
                }
            })
        })
        .collect()
}

/// The documents of a YAML stream with the (1-based) line each starts on, split as kubectl's reader splits
/// them: at every line that starts with `---` followed by nothing, blanks or a comment. Documents holding
/// nothing but blanks and comments are left out.
fn yaml_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let (mut start, mut current, mut content) = (1, String::new(), false);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let rest = line.strip_prefix("---");
        let separator = rest.is_some_and(|r| r.is_empty() || r.starts_with(|c: char| c.is_whitespace()));
        if separator {
            if content {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            start = i + 1;
            content = false;
            // `--- value` starts a document with content on the marker's line: keep the line.
            let after = rest.unwrap_or("").trim();
            if after.is_empty() || after.starts_with('#') {
                start = i + 2;
                continue;
            }
        }
        let t = line.trim();
        content |= !(t.is_empty() || t.starts_with('#') || t == "...");
        current.push_str(line);
    }
    if content {
        docs.push((start, current));
    }
    docs
}

/// Go's YAML reader (kubectl's) takes tabs as blanks inside flow collections (`args: [` with the items on
/// lines indented by tabs); the YAML 1.2 reader here does not where a tab starts a line. Leading tabs of a
/// line inside a flow collection become spaces (at least one column deeper than the line that opened it),
/// other tabs inside one a space. Quoted scalars, comments and block scalars are left as they are.
fn flow_tabs_as_spaces(doc: &str) -> String {
    if !doc.contains('\t') {
        return doc.to_owned();
    }
    let mut out = String::with_capacity(doc.len());
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut opener_indent = 0usize;
    // The indentation of a line ending in `|` or `>`: deeper lines are a block scalar's text.
    let mut block_parent: Option<usize> = None;
    for line in doc.split_inclusive('\n') {
        let body = line.trim_start_matches([' ', '\t']);
        let lead = &line[..line.len() - body.len()];
        let indent = lead.chars().map(|c| if c == '\t' { 8 } else { 1 }).sum::<usize>();
        if let Some(parent) = block_parent {
            if body.trim().is_empty() || indent > parent {
                out.push_str(line);
                continue;
            }
            block_parent = None;
        }
        if depth > 0 && quote.is_none() && lead.contains('\t') {
            out.push_str(&" ".repeat(indent.max(opener_indent + 1)));
        } else {
            out.push_str(lead);
        }
        let mut prev: Option<char> = None;
        let mut value_start = true;
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some('"') if c == '\\' => {
                    out.push(c);
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                    continue;
                }
                Some(q) if c == q => {
                    // '' inside a single-quoted scalar is an escaped quote.
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        out.push(c);
                        out.push(chars.next().unwrap_or('\''));
                        continue;
                    }
                    quote = None;
                }
                Some(_) => {}
                None => match c {
                    '#' if prev.is_none_or(char::is_whitespace) => {
                        out.push('#');
                        out.extend(chars.by_ref());
                        break;
                    }
                    '"' | '\'' if depth > 0 || value_start => quote = Some(c),
                    '[' | '{' if depth > 0 || value_start => {
                        if depth == 0 {
                            opener_indent = indent;
                        }
                        depth += 1;
                    }
                    ']' | '}' if depth > 0 => depth -= 1,
                    '\t' if depth > 0 => {
                        out.push(' ');
                        prev = Some(' ');
                        continue;
                    }
                    _ => {}
                },
            }
            out.push(c);
            if !c.is_whitespace() {
                // A value starts after `key:`, `- `, `,` or an opening bracket.
                value_start = matches!(c, ':' | '-' | ',' | '[' | '{' | '?');
            }
            prev = Some(c);
        }
        if depth == 0 && quote.is_none() {
            let t = body.split(" #").next().unwrap_or("").trim_end();
            let last = t.trim_end_matches(|c: char| c == '+' || c == '-' || c.is_ascii_digit());
            if last.ends_with(['|', '>']) && (last.len() == 1 || last[..last.len() - 1].ends_with([' ', ':', '-'])) {
                block_parent = Some(indent);
            }
        }
    }
    out
}

/// The reader's message without its own location (relative to the document, so misleading in a stream).
fn first_line_of(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let located = line.strip_prefix("line ").and_then(|r| r.split_once(": ")).filter(|(at, _)| at.contains(" column "));
    located.map_or(line, |(_, rest)| rest).to_owned()
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
        assert!(msg.starts_with("bad.yaml#1: line "), "{msg}");
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

    /// Streams as kubectl reads them: (case, text, objects loaded, errors as printed).
    const STREAMS: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "tabs indent the items of a flow sequence",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    args: [\n\t\t\"--a\",\n\t\t\"--b\\tc\"\n\t]\n",
            &["p"],
            &[],
        ),
        (
            "a tab separates flow items and precedes a comment",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p,\tlabels: {a: b}}\t# a comment\nspec:\n  containers: [{name: c,\targs: ['x\ty']}]\n",
            &["p"],
            &[],
        ),
        (
            "a broken document loses only itself",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n",
            &["a", "c"],
            &["f.yaml#2: line 8 column "],
        ),
        (
            "a tab indenting a block mapping is refused, as Go's reader refuses it",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n\tname: a\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
            &["b"],
            &["f.yaml#1: line 4 column "],
        ),
        (
            "a block scalar keeps its tabs and brackets",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    script: |\n      [\tnot a flow\n---\n--- # marker with a comment\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n",
            &["p", "ns1"],
            &[],
        ),
    ];

    #[test]
    fn streams_load_as_kubectl_reads_them() {
        for (case, text, objects, errors) in STREAMS {
            let l = load_str("f.yaml", text);
            let names: Vec<String> =
                l.objects.iter().map(|o| o.value.metadata().name.clone().unwrap_or_default()).collect();
            assert_eq!(names, *objects, "{case}: {:?}", l.errors);
            let msgs: Vec<String> = l.errors.iter().map(ToString::to_string).collect();
            assert_eq!(msgs.len(), errors.len(), "{case}: {msgs:?}");
            for (m, e) in msgs.iter().zip(*errors) {
                assert!(m.starts_with(e), "{case}: {m}");
            }
        }
    }

    #[test]
    fn tabs_inside_quotes_and_block_scalars_are_kept() {
        let l = load_str("f.yaml", STREAMS[0].1);
        let Object::Pod(p) = &l.objects[0].value else { panic!("{:?}", l.objects) };
        let args = p.spec.as_ref().and_then(|s| s.containers[0].args.clone()).unwrap_or_default();
        assert_eq!(args, ["--a", "--b\tc"]);
        let l = load_str("f.yaml", STREAMS[4].1);
        let Object::Pod(p) = &l.objects[0].value else { panic!("{:?}", l.objects) };
        let script = p.metadata.annotations.as_ref().and_then(|a| a.get("script").cloned());
        assert_eq!(script.as_deref(), Some("[\tnot a flow\n"));
    }
}
