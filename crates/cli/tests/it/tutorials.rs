//! The five source tutorials, run as users run them: each `examples/tutorials/*/tutorial.sh` starts a sandbox
//! with `palisade sandbox up` and drives it with the real kubectl, checking what the tutorial shows
//! (`HTTP/1.1 200 OK` where allowed, curl's exit code 28 where denied, the `get netpol` tables).

use std::path::{Path, PathBuf};
use std::process::Command;

fn kubectl_present() -> bool {
    Command::new("kubectl").args(["version", "--client"]).output().is_ok_and(|o| o.status.success())
}

fn tutorials() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tutorials");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/tutorials")
        .flatten()
        .map(|e| e.path().join("tutorial.sh"))
        .filter(|p| p.exists())
        .collect();
    v.sort();
    v
}

#[test]
fn the_five_tutorials_run_verbatim_with_kubectl() {
    if !crate::live::live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    // The tutorials are about kubectl: without it this test fails rather than skips.
    assert!(kubectl_present(), "kubectl must be installed to run the tutorials");
    let scripts = tutorials();
    assert_eq!(scripts.len(), 5, "five tutorials: {scripts:?}");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_palisade")).parent().unwrap().to_owned();
    let run_dir = std::env::temp_dir().join(format!("palisade-tutorials-{}", std::process::id()));
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    // In parallel: each script has its own sandbox (and removes it, whatever happens).
    let handles: Vec<_> = scripts
        .into_iter()
        .map(|script| {
            let (path, run_dir) = (path.clone(), run_dir.clone());
            std::thread::spawn(move || {
                let out = Command::new("bash")
                    .arg(&script)
                    .env("PATH", path)
                    .env("PALISADE_RUN_DIR", run_dir)
                    .env_remove("KUBECONFIG")
                    .output()
                    .expect("run bash");
                (script, out)
            })
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (script, out) = h.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("every step behaved as the tutorial shows") {
            failures.push(format!(
                "{} failed ({}):\n{}\n{}",
                script.display(),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&run_dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
