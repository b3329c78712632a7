//! Manifests read as kubectl reads them: a broken document loses only itself, tabs inside flow collections
//! are blanks, and every command that reads manifests exits non-zero when a document could not be read while
//! still printing what it could.

use super::{palisade, stdout};

const ONE_BROKEN: &str = "crates/cli/tests/it/fixtures/one-broken-document.yaml";

/// (arguments, exit code, something the output of what could be read holds).
const READERS: &[(&[&str], i32, &str)] = &[
    (&["validate", "-f", ONE_BROKEN], 1, "one-broken-document.yaml#3: line 26 column "),
    (&["get", "netpol", "-f", ONE_BROKEN, "-n", "shop"], 1, "web-ingress"),
    (&["get", "pods", "-f", ONE_BROKEN, "-A"], 1, "web"),
    (&["get", "netpol", "-f", "crates/cli/tests/it/fixtures/broken.yaml"], 1, ""),
    (&["check", "-f", ONE_BROKEN, "--from", "10.0.0.1", "--to", "shop/web", "--port", "8080"], 2, "ALLOWED"),
    (&["matrix", "-f", ONE_BROKEN, "--port", "8080"], 1, "shop/web"),
    (&["explain", "-f", ONE_BROKEN], 1, "NetworkPolicy shop/web-ingress"),
    (&["list", "-f", ONE_BROKEN], 1, "=> shop/web[Pod] : TCP 8080"),
    (&["lint", "-f", ONE_BROKEN], 1, "findings"),
    (&["diff", ONE_BROKEN, ONE_BROKEN], 2, ""),
];

#[test]
fn every_reading_command_exits_non_zero_on_an_unreadable_document() {
    for (args, code, holds) in READERS {
        let o = palisade(args);
        let (out, err) = (stdout(&o), String::from_utf8_lossy(&o.stderr).into_owned());
        assert_eq!(o.status.code(), Some(*code), "{args:?}\nstdout: {out}\nstderr: {err}");
        assert!(out.contains(holds), "{args:?}: {out}");
        let located = if args[0] == "validate" { &out } else { &err };
        assert!(located.contains("line ") && located.contains(" column "), "{args:?}: {located}");
    }
}

#[test]
fn a_broken_document_loses_only_itself() {
    let o = palisade(&["validate", "-f", ONE_BROKEN]);
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    insta::assert_snapshot!(out);
    let o = palisade(&["get", "pods", "-f", ONE_BROKEN, "-n", "shop", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let args = &v["items"][0]["spec"]["containers"][0]["args"];
    assert_eq!(args, &serde_json::json!(["--port", "8080"]), "tab-indented flow items read as kubectl reads them");
}
