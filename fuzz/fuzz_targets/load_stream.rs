//! A YAML stream with any text as one of its documents: loading never panics, and the text loses at most
//! itself (and whatever `---` lines it holds split off): the good documents around it always load.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_engine::{Object, load_str};

const GOOD: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: before}\n";
const LAST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: after\nspec:\n  containers:\n  - name: c\n    args: [\n\t\t\"a\",\n\t\t\"b\"\n\t]\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = load_str("fuzz.yaml", text);
    let stream = format!("{GOOD}---\n{text}\n---\n{LAST}");
    let loaded = load_str("fuzz.yaml", &stream);
    let first = loaded.objects.first().map(|o| &o.value);
    assert!(matches!(first, Some(Object::Namespace(ns)) if ns.metadata.name.as_deref() == Some("before")));
    let last = loaded.objects.last().map(|o| &o.value);
    let Some(Object::Pod(pod)) = last else { panic!("the last document was lost: {:?}", loaded.errors) };
    assert_eq!(pod.metadata.name.as_deref(), Some("after"));
    // Every error names its document and, for YAML, the line in the whole stream.
    for e in &loaded.errors {
        assert!(e.origin.document > 0, "{e}");
    }
});
