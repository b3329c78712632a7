//! kube-proxy: Services and their EndpointSlices from the store, rendered by `proxy` into one nftables
//! table per node namespace (ClusterIP DNAT before Palisade's filtering), replaced atomically when it
//! changes. It owns its table and touches no other.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::proxy::{Protocol, Service, ServicePort};
use crate::store::{Store, ns_name};

/// The table kube-proxy owns in each node namespace.
pub const TABLE: &str = "palisade-proxy";

pub struct KubeProxy {
    /// The node namespaces to program.
    pub node_netns: Vec<String>,
    last: String,
}

fn protocol(p: &str) -> Protocol {
    match p {
        "UDP" => Protocol::Udp,
        "SCTP" => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// The services to translate: ClusterIP Services (NodePort and LoadBalancer ones by their cluster IP only),
/// each port with the ready endpoints of its slices.
pub fn services(store: &Store) -> Vec<Service> {
    let slices = store.list("discovery.k8s.io/endpointslices", None).0;
    let mut out = Vec::new();
    for svc in store.list("/services", None).0 {
        let (ns, name) = ns_name(&svc);
        let cluster_ips: Vec<IpAddr> = svc["spec"]["clusterIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str()?.parse().ok())
            .collect();
        if cluster_ips.is_empty() {
            continue; // headless or ExternalName: DNS answers for them, not kube-proxy
        }
        let mine: Vec<&Value> = slices
            .iter()
            .map(|s| &**s)
            .filter(|s| {
                s["metadata"]["namespace"] == ns.as_str()
                    && s["metadata"]["labels"]["kubernetes.io/service-name"] == name.as_str()
            })
            .collect();
        let ports = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|sp| {
                let port = u16::try_from(sp["port"].as_u64()?).ok()?;
                let proto = sp["protocol"].as_str().unwrap_or("TCP");
                let pname = sp["name"].as_str().unwrap_or("");
                let mut endpoints = Vec::new();
                for s in &mine {
                    let Some(target) = s["ports"].as_array().into_iter().flatten().find(|p| {
                        p["name"].as_str().unwrap_or("") == pname && p["protocol"].as_str().unwrap_or("TCP") == proto
                    }) else {
                        continue;
                    };
                    let Some(tp) = target["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else { continue };
                    for e in s["endpoints"].as_array().into_iter().flatten() {
                        if e["conditions"]["ready"] != true {
                            continue;
                        }
                        for a in e["addresses"].as_array().into_iter().flatten() {
                            if let Some(ip) = a.as_str().and_then(|x| x.parse().ok()) {
                                endpoints.push((ip, tp));
                            }
                        }
                    }
                }
                endpoints.sort();
                Some(ServicePort { protocol: protocol(proto), port, endpoints })
            })
            .collect();
        out.push(Service { namespace: ns, name, cluster_ips, ports });
    }
    out
}

impl KubeProxy {
    pub fn new(node_netns: Vec<String>) -> KubeProxy {
        KubeProxy { node_netns, last: String::new() }
    }

    /// Renders the table and, when it changed, replaces it in every node namespace.
    pub fn reconcile(&mut self, store: &Store) {
        let script = crate::proxy::render(TABLE, &services(store));
        if script == self.last {
            return;
        }
        let mut ok = true;
        for ns in &self.node_netns {
            if let Err(e) = nft(ns, &script) {
                tracing::warn!(node = %ns, error = %e, "kube-proxy could not program the node");
                ok = false;
            }
        }
        if ok {
            self.last = script;
        }
    }
}

fn nft(netns: &str, script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}
