//! `palisade bench sandbox`: the local cluster timed as users meet it, through `palisade sandbox up` and the
//! real kubectl, and a policy written through the API timed until every node enforces it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)]
}

struct Bench {
    name: String,
    exe: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Bench {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("kubectl")
            .args(args)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .context("running kubectl (it must be installed)")?;
        if !out.status.success() {
            bail!("kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.cache.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = Command::new(&self.exe).args(["sandbox", "down", "--name", &self.name]).output();
    }
}

fn rss_peak_kb(dir: &Path) -> Option<u64> {
    let ready = palisade_cluster::controlplane::read_ready(dir)?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", ready["pid"].as_u64()?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

pub fn run(nodes: usize, scale: usize, listed: usize, changes: usize) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let name = format!("bench{}", std::process::id() % 100_000);
    // 1. up -> API ready (the command returns once the API answers).
    let started = Instant::now();
    let out = Command::new(&exe).args(["sandbox", "up", "--name", &name, "--nodes", &nodes.to_string()]).output()?;
    let up = started.elapsed();
    let dir = palisade_sandbox::run_root().join(&name);
    let bench = Bench {
        name: name.clone(),
        exe: exe.clone(),
        kubeconfig: palisade_cluster::controlplane::kubeconfig_file(&dir),
        cache: tempfile::tempdir()?,
    };
    if !out.status.success() {
        bail!("sandbox up: {}", String::from_utf8_lossy(&out.stderr));
    }
    // 2. the tutorial app: kubectl apply -> every pod Ready.
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tutorials/frontend-backend/simple-app.yaml");
    let app = std::fs::read_to_string(&app).unwrap_or_default();
    let app = bench.file("app.yaml", &app)?;
    let started = Instant::now();
    bench.kubectl(&["apply", "-f", app.to_str().unwrap_or_default()])?;
    bench.kubectl(&["wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s"])?;
    let apply_ready = started.elapsed();
    // 3. a Deployment scaled 0 -> N, every pod Ready.
    bench.kubectl(&["create", "deployment", "web", "--image", "nginx", "--port=80", "--replicas=0"])?;
    let started = Instant::now();
    bench.kubectl(&["scale", "deployment", "web", &format!("--replicas={scale}")])?;
    bench.kubectl(&["rollout", "status", "deployment/web", "--timeout=600s"])?;
    let scaled = started.elapsed();
    // 4. `kubectl get pods -A` with `listed` pods: the rest are a completed Job's pods.
    let have = bench.kubectl(&["get", "pods", "-A", "--no-headers"])?.lines().count();
    if listed > have {
        let extra = listed - have;
        let job = bench.file(
            "job.yaml",
            &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "filler"},
                    "spec": {"completions": extra, "parallelism": extra,
                             "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
            .to_string(),
        )?;
        bench.kubectl(&["apply", "-f", job.to_str().unwrap_or_default()])?;
        bench.kubectl(&["wait", "--for=condition=complete", "job/filler", "--timeout=300s"])?;
    }
    let pods_listed = bench.kubectl(&["get", "pods", "-A", "--no-headers"])?.lines().count();
    let mut gets = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        bench.kubectl(&["get", "pods", "-A"])?;
        gets.push(ms(t.elapsed()));
    }
    // 5. a policy written through the API -> enforced on every node (the node roles' record of what every
    // agent enforces).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut latencies = Vec::new();
    rt.block_on(async {
        let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
        for i in 0..changes {
            let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "bench", "namespace": "default"},
                "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                                      "ports": [{"port": 8000 + i as i64}]}]}});
            let t = Instant::now();
            let written = c.apply(&policy).await?;
            let rv: u64 = written["metadata"]["resourceVersion"].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
            let deadline = Instant::now() + Duration::from_secs(30);
            while palisade_cluster::node::read_synced(&dir).unwrap_or(0) < rv {
                if Instant::now() > deadline {
                    bail!("policy write {i} was not enforced within 30 s");
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            latencies.push(ms(t.elapsed()));
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let rss = rss_peak_kb(&dir).unwrap_or(0);
    Ok(json!({
        "nodes": nodes,
        "up_to_api_ready_ms": ms(up),
        "tutorial_apply_to_ready_ms": ms(apply_ready),
        "scale_pods": scale,
        "scale_0_to_n_ready_ms": ms(scaled),
        "pods_listed": pods_listed,
        "get_pods_p50_ms": percentile(gets.clone(), 0.5),
        "policy_to_enforced_p50_ms": percentile(latencies.clone(), 0.5),
        "policy_to_enforced_p99_ms": percentile(latencies, 0.99),
        "control_plane_peak_rss_mb": (rss as f64 / 1024.0 * 10.0).round() / 10.0,
    }))
}
