//! The kubelet: a Pod bound to one of the sandbox's nodes becomes a network namespace with servers on its
//! ports (through the sandbox's runtime), and the kubelet writes the Pod's `status` as a real kubelet does.
//! It owns nothing else: a pod being deleted is torn down, then removed from the store.
//!
//! Images are not run: a pod's containers are the sandbox's application server (HTTP on TCP ports, echo on
//! UDP, INIT-ACK on SCTP); `exec` runs host programs inside the pod's network namespace. Pods of Jobs run to
//! completion at once (phase Succeeded), so they take part in nothing, as finished pods on a cluster.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use palisade_engine::{Kind, Object};
use palisade_sandbox::Sandbox;
use serde_json::{Value, json};

use crate::store::{Store, now_rfc3339, ns_name, terminating};

/// The cluster's DNS domain and the DNS Service's address every pod's resolver points at.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
pub const DNS_SERVICE_IP: &str = "10.96.0.10";

fn owned_by_job(p: &Value) -> bool {
    p["metadata"]["ownerReferences"].as_array().into_iter().flatten().any(|r| r["kind"] == "Job")
}

/// The resolver file `ip netns exec` puts in place of `/etc/resolv.conf` for a pod's namespace.
pub fn resolv_conf(namespace: &str) -> String {
    format!(
        "nameserver {DNS_SERVICE_IP}\nsearch {namespace}.svc.{CLUSTER_DOMAIN} svc.{CLUSTER_DOMAIN} {CLUSTER_DOMAIN}\noptions ndots:5\n"
    )
}

/// Where `ip netns exec NETNS` finds the namespace's own `/etc` files.
pub fn netns_etc(netns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(netns)
}

fn container_statuses(p: &Value, now: &str, done: bool) -> Vec<Value> {
    p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("");
            let image = c["image"].as_str().unwrap_or("");
            let id = crate::controllers::short_hash(&json!([p["metadata"]["uid"], name]), 16);
            let state = if done {
                json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now, "containerID": format!("palisade://{id}")}})
            } else {
                json!({"running": {"startedAt": now}})
            };
            json!({"name": name, "image": image, "imageID": format!("palisade.dev/sandbox/{image}"),
                   "containerID": format!("palisade://{id}"), "ready": !done, "started": !done, "restartCount": 0,
                   "state": state})
        })
        .collect()
}

fn conditions(now: &str, ready: bool, scheduled_at: Option<&str>) -> Value {
    let r = if ready { "True" } else { "False" };
    let sched = scheduled_at.unwrap_or(now);
    let mut cs = vec![
        json!({"type": "PodReadyToStartContainers", "status": r, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "Ready", "status": r, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "ContainersReady", "status": r, "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": sched}),
    ];
    if !ready {
        for c in &mut cs[2..4] {
            c["reason"] = json!("PodCompleted");
        }
    }
    Value::Array(cs)
}

fn scheduled_at(p: &Value) -> Option<String> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
}

/// The status a kubelet writes for a running pod.
pub fn running_status(p: &Value, ips: &[IpAddr], host_ip: &str) -> Value {
    let now = now_rfc3339();
    let ips: Vec<Value> = ips.iter().map(|i| json!({"ip": i.to_string()})).collect();
    json!({"phase": "Running", "conditions": conditions(&now, true, scheduled_at(p).as_deref()),
           "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
           "podIP": ips.first().map_or(Value::Null, |i| i["ip"].clone()), "podIPs": ips,
           "startTime": now, "containerStatuses": container_statuses(p, &now, false), "qosClass": "BestEffort"})
}

fn succeeded_status(p: &Value, host_ip: &str) -> Value {
    let now = now_rfc3339();
    json!({"phase": "Succeeded", "conditions": conditions(&now, false, scheduled_at(p).as_deref()),
           "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": now,
           "containerStatuses": container_statuses(p, &now, true), "qosClass": "BestEffort"})
}

/// The node's address as pods see it in `status.hostIP` (the node's underlay address).
pub fn host_ip(node: &str) -> String {
    let i: u32 = node.strip_prefix("node-").and_then(|x| x.parse().ok()).unwrap_or(0);
    format!("172.31.255.{}", i + 1)
}

/// The kubelets of every sandbox node (they share the sandbox's runtime, each handling pods bound to its node).
pub struct Kubelet {
    pub nodes: Vec<String>,
    /// Pods whose status carries their address only after this long (pod-start tests).
    pub status_delay: std::time::Duration,
    /// Pods started whose status is not written yet, and when they started (for the delayed status).
    started: BTreeMap<String, std::time::Instant>,
}

impl Kubelet {
    pub fn new(nodes: Vec<String>) -> Kubelet {
        Kubelet { nodes, status_delay: std::time::Duration::ZERO, started: BTreeMap::new() }
    }

    /// One pass: start pods bound here and not running yet, write their status, tear down pods being deleted
    /// and namespaces of pods that are gone. Errors of one pod do not stop the others.
    pub fn reconcile(&mut self, store: &Store, sandbox: &mut Sandbox) {
        let pods = store.list("/pods", None).0;
        let mut live = std::collections::BTreeSet::new();
        for p in &pods {
            let (ns, name) = ns_name(p);
            let key = format!("{ns}/{name}");
            let Some(node) = p["spec"]["nodeName"].as_str().filter(|n| self.nodes.iter().any(|m| m == n)) else {
                continue;
            };
            let host_ip = host_ip(node);
            if terminating(p) {
                if sandbox.pods().contains_key(&key) {
                    self.stop(sandbox, &ns, &name);
                }
                let _ = store.delete("/pods", &ns, &name);
                continue;
            }
            live.insert(key.clone());
            let phase = p["status"]["phase"].as_str().unwrap_or("Pending");
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            if owned_by_job(p) {
                let status = succeeded_status(p, &host_ip);
                let _ = store.modify("/pods", &ns, &name, |o| o["status"] = status);
                continue;
            }
            if p["spec"]["hostNetwork"] == json!(true) {
                if phase != "Running" {
                    let ips: Vec<IpAddr> = host_ip.parse().into_iter().collect();
                    let status = running_status(p, &ips, &host_ip);
                    let _ = store.modify("/pods", &ns, &name, |o| o["status"] = status);
                }
                continue;
            }
            if !sandbox.pods().contains_key(&key) {
                if let Err(e) = self.start(sandbox, p) {
                    tracing::warn!(pod = %key, error = %e, "starting the pod failed");
                    continue;
                }
                self.started.insert(key.clone(), std::time::Instant::now());
            }
            if phase != "Running" {
                let waited = self.started.get(&key).map_or(std::time::Duration::MAX, std::time::Instant::elapsed);
                if waited < self.status_delay {
                    continue;
                }
                let ips = sandbox.pods().get(&key).map(|h| h.ips.clone()).unwrap_or_default();
                let status = running_status(p, &ips, &host_ip);
                let _ = store.modify("/pods", &ns, &name, |o| o["status"] = status);
            }
            self.started.remove(&key);
        }
        let gone: Vec<String> = sandbox.pods().keys().filter(|k| !live.contains(*k)).cloned().collect();
        for key in gone {
            if let Some((ns, name)) = key.split_once('/') {
                self.stop(sandbox, ns, name);
            }
        }
    }

    /// Whether a delayed status is still to be written (the node loop then wakes up again).
    pub fn pending_status(&self) -> bool {
        !self.started.is_empty()
    }

    fn start(&mut self, sandbox: &mut Sandbox, p: &Value) -> Result<(), String> {
        let mut pod = p.clone();
        let requested: Vec<Value> = p["metadata"]["annotations"][crate::apiserver::POD_IPS_ANNOTATION]
            .as_str()
            .unwrap_or("")
            .split(',')
            .filter(|s| s.parse::<IpAddr>().is_ok())
            .map(|s| json!({"ip": s}))
            .collect();
        pod["status"]["podIP"] = requested.first().map_or(Value::Null, |i| i["ip"].clone());
        pod["status"]["podIPs"] = if requested.is_empty() { Value::Null } else { Value::Array(requested) };
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).map_err(|e| e.to_string())?;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        sandbox.apply(&[Object::Pod(Box::new(pod))]).map_err(|e| e.to_string())?;
        let key = format!("{ns}/{}", p["metadata"]["name"].as_str().unwrap_or(""));
        if let Some(h) = sandbox.pods().get(&key) {
            let dir = netns_etc(&h.netns);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("resolv.conf"), resolv_conf(&ns));
        }
        Ok(())
    }

    fn stop(&mut self, sandbox: &mut Sandbox, ns: &str, name: &str) {
        let key = format!("{ns}/{name}");
        if let Some(h) = sandbox.pods().get(&key) {
            let _ = std::fs::remove_dir_all(netns_etc(&h.netns));
        }
        self.started.remove(&key);
        if let Err(e) = sandbox.delete(Kind::Pod, ns, name) {
            tracing::warn!(pod = %key, error = %e, "stopping the pod failed");
        }
    }
}
