//! The controllers, level-triggered as Kubernetes' own: each reconciles from the store's current state,
//! is idempotent, and writes only what it owns. Deployment → ReplicaSets; ReplicaSet and
//! ReplicationController → Pods; StatefulSet, DaemonSet, Job → Pods; Service → EndpointSlices and
//! Endpoints; the scheduler binds Pods to Nodes; the namespace controller empties terminating namespaces;
//! the garbage collector deletes what lost its owner.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::selector::LabelSelector;
use crate::store::{Store, StoreError, now_rfc3339, ns_name, terminating};

const PODS: &str = "/pods";

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

fn owner_ref(owner: &Value, kind: &str, api_version: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
           "controller": true, "blockOwnerDeletion": true})
}

/// The uid of the object's controller, if any.
fn controller_uid(o: &Value) -> Option<&str> {
    o["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
        .and_then(|r| r["uid"].as_str())
}

/// Whether a pod is Ready (the kubelet's condition).
pub fn pod_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn pod_done(p: &Value) -> bool {
    matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

/// A stable short hash (kubectl-style, consonants and digits) of a value.
pub fn short_hash(v: &Value, len: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    let mut n = h.finish();
    (0..len)
        .map(|_| {
            let c = ALPHA[(n % ALPHA.len() as u64) as usize];
            n /= ALPHA.len() as u64;
            char::from(c)
        })
        .collect()
}

fn random_suffix() -> String {
    crate::store::random_suffix(5)
}

/// A pod from a template, owned by `owner`.
fn pod_from_template(template: &Value, ns: &str, name: &str, owner: Value, extra_labels: &[(&str, String)]) -> Value {
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["name"] = json!(name);
    meta["namespace"] = json!(ns);
    meta["ownerReferences"] = json!([owner]);
    for (k, v) in extra_labels {
        meta["labels"][*k] = json!(v);
    }
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
    }
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"].clone(),
                         "status": {"phase": "Pending", "qosClass": "BestEffort"}});
    crate::strategy::default("Pod", &mut pod);
    pod
}

/// Creates a pod unless one of that name exists (a retried reconcile must not fail).
fn create_pod(store: &Store, pod: Value) {
    let _ = store.create(PODS, pod);
}

/// Deletes a pod as the API does: bound pods are marked for their kubelet, others go at once.
pub fn delete_pod(store: &Store, ns: &str, name: &str) {
    let Some(p) = store.get(PODS, ns, name) else { return };
    if terminating(&p) {
        return;
    }
    if p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()) && !pod_done(&p) {
        let _ = store.modify(PODS, ns, name, |o| {
            o["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            o["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        });
    } else {
        let _ = store.delete(PODS, ns, name);
    }
}

/// Pods controlled by `owner`, not being deleted.
fn owned_pods(store: &Store, owner: &Value) -> Vec<Arc<Value>> {
    let (ns, _) = ns_name(owner);
    let id = uid(owner).to_owned();
    store
        .list(PODS, Some(&ns))
        .0
        .into_iter()
        .filter(|p| controller_uid(p) == Some(id.as_str()) && !terminating(p))
        .collect()
}

/// Writes `status` if it differs (no event otherwise).
fn set_status(store: &Store, resource: &str, o: &Value, status: Value) {
    if o["status"] == status {
        return;
    }
    let (ns, name) = ns_name(o);
    let _ = store.modify(resource, &ns, &name, |x| x["status"] = status);
}

fn replicas(o: &Value) -> usize {
    usize::try_from(o["spec"]["replicas"].as_i64().unwrap_or(1).max(0)).unwrap_or(0)
}

/// The pods of a ReplicaSet or ReplicationController: create the missing, delete the surplus (not ready and
/// newest first), then status.
fn reconcile_replicas(store: &Store, resource: &str, o: &Value, kind: &str, api: &str) {
    let (ns, name) = ns_name(o);
    let mut pods = owned_pods(store, o);
    let want = replicas(o);
    let template = &o["spec"]["template"];
    if pods.len() < want && !terminating(o) {
        for _ in pods.len()..want {
            let pname = format!("{name}-{}", random_suffix());
            create_pod(store, pod_from_template(template, &ns, &pname, owner_ref(o, kind, api), &[]));
        }
        pods = owned_pods(store, o);
    } else if pods.len() > want {
        pods.sort_by_key(|p| {
            (pod_ready(p), std::cmp::Reverse(p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_owned()))
        });
        for p in &pods[..pods.len() - want] {
            let (pns, pn) = ns_name(p);
            delete_pod(store, &pns, &pn);
        }
        pods = owned_pods(store, o);
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let mut status = json!({"replicas": pods.len(), "fullyLabeledReplicas": pods.len(),
                            "observedGeneration": o["metadata"]["generation"]});
    if ready > 0 {
        status["readyReplicas"] = json!(ready);
        status["availableReplicas"] = json!(ready);
    }
    set_status(store, resource, o, status);
}

/// The ReplicaSets of a Deployment: one per pod template (`<deploy>-<hash>`), the current one scaled to the
/// desired count, older ones scaled down once the current one's pods are ready.
fn reconcile_deployment(store: &Store, d: &Value) {
    let (ns, name) = ns_name(d);
    let template = &d["spec"]["template"];
    let hash = short_hash(template, 10);
    let want = replicas(d);
    let id = uid(d).to_owned();
    let owned: Vec<Arc<Value>> = store
        .list("apps/replicasets", Some(&ns))
        .0
        .into_iter()
        .filter(|rs| controller_uid(rs) == Some(id.as_str()))
        .collect();
    let rs_name = format!("{name}-{hash}");
    let revision = owned
        .iter()
        .filter_map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0);
    let current = owned.iter().find(|rs| rs["metadata"]["name"] == json!(rs_name)).cloned();
    let current = match current {
        Some(rs) => {
            if replicas(&rs) != want {
                let _ = store.modify("apps/replicasets", &ns, &rs_name, |x| x["spec"]["replicas"] = json!(want));
            }
            store.get("apps/replicasets", &ns, &rs_name).unwrap_or(rs)
        }
        None => {
            let mut tpl = template.clone();
            tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut labels = tpl["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                             "annotations": {"deployment.kubernetes.io/revision": (revision + 1).to_string(),
                                             "deployment.kubernetes.io/desired-replicas": want.to_string()},
                             "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")]},
                "spec": {"replicas": want, "selector": selector, "template": tpl}, "status": {"replicas": 0}});
            let _ = store.create("apps/replicasets", rs.clone());
            store.get("apps/replicasets", &ns, &rs_name).unwrap_or_else(|| Arc::new(rs))
        }
    };
    let current_ready = current["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let rolled = usize::try_from(current_ready).unwrap_or(0) >= want;
    let mut total = 0i64;
    let mut ready = 0i64;
    for rs in &owned {
        let rn = rs["metadata"]["name"].as_str().unwrap_or("");
        if rn != rs_name && rolled && replicas(rs) != 0 {
            let _ = store.modify("apps/replicasets", &ns, rn, |x| x["spec"]["replicas"] = json!(0));
        }
    }
    for rs in store.list("apps/replicasets", Some(&ns)).0.iter().filter(|rs| controller_uid(rs) == Some(id.as_str())) {
        total += rs["status"]["replicas"].as_i64().unwrap_or(0);
        ready += rs["status"]["readyReplicas"].as_i64().unwrap_or(0);
    }
    let updated = current["status"]["replicas"].as_i64().unwrap_or(0);
    let want_i = i64::try_from(want).unwrap_or(0);
    let now = now_rfc3339();
    let keep_time = |t: &str, status: &str| {
        d["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t && c["status"] == status))
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
            .unwrap_or_else(|| now.clone())
    };
    let available = ready >= want_i;
    let complete = available && total == updated && updated == want_i;
    let (ast, areason, amsg) = if available {
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    };
    let (preason, pmsg) = if complete {
        ("NewReplicaSetAvailable", format!("ReplicaSet \"{rs_name}\" has successfully progressed."))
    } else {
        ("ReplicaSetUpdated", format!("ReplicaSet \"{rs_name}\" is progressing."))
    };
    let mut status = json!({"observedGeneration": d["metadata"]["generation"], "conditions": [
        {"type": "Available", "status": ast, "reason": areason, "message": amsg,
         "lastUpdateTime": keep_time("Available", ast), "lastTransitionTime": keep_time("Available", ast)},
        {"type": "Progressing", "status": "True", "reason": preason, "message": pmsg,
         "lastUpdateTime": keep_time("Progressing", "True"), "lastTransitionTime": keep_time("Progressing", "True")}]});
    for (k, v) in
        [("replicas", total), ("updatedReplicas", updated), ("readyReplicas", ready), ("availableReplicas", ready)]
    {
        if v > 0 {
            status[k] = json!(v);
        }
    }
    if total - ready > 0 {
        status["unavailableReplicas"] = json!(total - ready);
    }
    if d["metadata"]["annotations"]["deployment.kubernetes.io/revision"].is_null() {
        let rev = current["metadata"]["annotations"]["deployment.kubernetes.io/revision"].clone();
        let _ = store.modify("apps/deployments", &ns, &name, |x| {
            x["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = rev
        });
    }
    if let Some(d) = store.get("apps/deployments", &ns, &name) {
        set_status(store, "apps/deployments", &d, status);
    }
}

/// A StatefulSet's pods `<name>-0..n-1`, created in order (each once the previous is ready), removed from
/// the highest ordinal, replaced one at a time when the template changes.
fn reconcile_statefulset(store: &Store, s: &Value) {
    let (ns, name) = ns_name(s);
    let want = replicas(s);
    let revision = format!("{name}-{}", short_hash(&s["spec"]["template"], 10));
    let pods = owned_pods(store, s);
    let by_name: BTreeMap<String, &Value> = pods.iter().map(|p| (ns_name(p).1, &**p)).collect();
    let mut all_ready_before = true;
    for i in 0..want {
        let pname = format!("{name}-{i}");
        match by_name.get(&pname) {
            None => {
                if !all_ready_before || store.get(PODS, &ns, &pname).is_some() {
                    break;
                }
                let extra = [
                    ("statefulset.kubernetes.io/pod-name", pname.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                    ("controller-revision-hash", revision.clone()),
                ];
                let mut pod = pod_from_template(
                    &s["spec"]["template"],
                    &ns,
                    &pname,
                    owner_ref(s, "StatefulSet", "apps/v1"),
                    &extra,
                );
                pod["spec"]["hostname"] = json!(pname);
                if let Some(svc) = s["spec"]["serviceName"].as_str().filter(|x| !x.is_empty()) {
                    pod["spec"]["subdomain"] = json!(svc);
                }
                create_pod(store, pod);
                break;
            }
            Some(p) => all_ready_before &= pod_ready(p),
        }
    }
    // Surplus from the top; then one outdated pod at a time, the highest first, when all are ready.
    for p in &pods {
        let ord: usize = ns_name(p).1.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(usize::MAX);
        if ord >= want {
            delete_pod(store, &ns, &ns_name(p).1);
        }
    }
    if pods.len() == want && pods.iter().all(|p| pod_ready(p)) {
        let mut outdated: Vec<&Value> = pods
            .iter()
            .map(|p| &**p)
            .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] != json!(revision))
            .collect();
        outdated.sort_by_key(|p| std::cmp::Reverse(ns_name(p).1));
        if let Some(p) = outdated.first() {
            delete_pod(store, &ns, &ns_name(p).1);
        }
    }
    let pods = owned_pods(store, s);
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let updated =
        pods.iter().filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == json!(revision)).count();
    let mut status = json!({"observedGeneration": s["metadata"]["generation"], "replicas": pods.len(),
        "currentReplicas": updated, "updatedReplicas": updated, "currentRevision": revision, "updateRevision": revision,
        "collisionCount": 0, "availableReplicas": ready});
    if ready > 0 {
        status["readyReplicas"] = json!(ready);
    }
    set_status(store, "apps/statefulsets", s, status);
}

/// One pod per node.
fn reconcile_daemonset(store: &Store, ds: &Value, nodes: &[String]) {
    let (ns, name) = ns_name(ds);
    let revision = short_hash(&ds["spec"]["template"], 10);
    let pods = owned_pods(store, ds);
    for node in nodes {
        let on: Vec<&Value> = pods.iter().map(|p| &**p).filter(|p| p["spec"]["nodeName"] == json!(node)).collect();
        if on.is_empty() && !terminating(ds) {
            let pname = format!("{name}-{}", random_suffix());
            let mut pod = pod_from_template(
                &ds["spec"]["template"],
                &ns,
                &pname,
                owner_ref(ds, "DaemonSet", "apps/v1"),
                &[
                    ("controller-revision-hash", revision.clone()),
                    ("pod-template-generation", ds["metadata"]["generation"].to_string()),
                ],
            );
            pod["spec"]["nodeName"] = json!(node);
            create_pod(store, pod);
        } else if let Some(p) =
            on.iter().find(|p| p["metadata"]["labels"]["controller-revision-hash"] != json!(revision))
        {
            delete_pod(store, &ns, &ns_name(p).1);
        }
    }
    for p in pods.iter().filter(|p| !nodes.iter().any(|n| p["spec"]["nodeName"] == json!(n))) {
        delete_pod(store, &ns, &ns_name(p).1);
    }
    let pods = owned_pods(store, ds);
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let updated =
        pods.iter().filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == json!(revision)).count();
    let status = json!({"observedGeneration": ds["metadata"]["generation"], "desiredNumberScheduled": nodes.len(),
        "currentNumberScheduled": pods.len(), "numberMisscheduled": 0, "numberReady": ready, "numberAvailable": ready,
        "updatedNumberScheduled": updated});
    set_status(store, "apps/daemonsets", ds, status);
}

/// A Job's pods run to completion (the kubelet marks them Succeeded); the Job completes when enough did.
fn reconcile_job(store: &Store, job: &Value) {
    let (ns, name) = ns_name(job);
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1).max(0);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1).max(0);
    let id = uid(job).to_owned();
    let pods: Vec<Arc<Value>> =
        store.list(PODS, Some(&ns)).0.into_iter().filter(|p| controller_uid(p) == Some(id.as_str())).collect();
    let succeeded = pods.iter().filter(|p| p["status"]["phase"] == "Succeeded").count() as i64;
    let failed = pods.iter().filter(|p| p["status"]["phase"] == "Failed").count() as i64;
    let active = pods.iter().filter(|p| !pod_done(p) && !terminating(p)).count() as i64;
    let complete = succeeded >= completions;
    if !complete && job["spec"]["suspend"] != json!(true) {
        let missing = (completions - succeeded - active).min(parallelism - active);
        let selector_uid = job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"].clone();
        for _ in 0..missing.max(0) {
            let pname = format!("{name}-{}", random_suffix());
            let mut extra = vec![("job-name", name.clone()), ("batch.kubernetes.io/job-name", name.clone())];
            if selector_uid.is_null() {
                extra.push(("controller-uid", id.clone()));
                extra.push(("batch.kubernetes.io/controller-uid", id.clone()));
            }
            create_pod(
                store,
                pod_from_template(&job["spec"]["template"], &ns, &pname, owner_ref(job, "Job", "batch/v1"), &extra),
            );
        }
    }
    let now = now_rfc3339();
    let mut status = json!({"startTime": job["status"]["startTime"].as_str().map_or(now.clone(), str::to_owned),
                            "uncountedTerminatedPods": {}, "ready": 0, "terminating": 0});
    if active > 0 {
        status["active"] = json!(active);
    }
    if succeeded > 0 {
        status["succeeded"] = json!(succeeded);
    }
    if failed > 0 {
        status["failed"] = json!(failed);
    }
    if complete {
        let done = job["status"]["completionTime"].as_str().map_or(now.clone(), str::to_owned);
        status["completionTime"] = json!(done);
        status["conditions"] = json!([
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": done, "lastTransitionTime": done},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": done, "lastTransitionTime": done}]);
    }
    set_status(store, "batch/jobs", job, status);
}

/// The node a new pod goes to: the one with the fewest pods.
fn schedule(store: &Store, nodes: &[String]) {
    if nodes.is_empty() {
        return;
    }
    let pods = store.list(PODS, None).0;
    let mut load: BTreeMap<&str, usize> = nodes.iter().map(|n| (n.as_str(), 0)).collect();
    for p in &pods {
        if let Some(n) = p["spec"]["nodeName"].as_str()
            && let Some(c) = load.get_mut(n)
        {
            *c += 1;
        }
    }
    for p in pods.iter().filter(|p| p["spec"]["nodeName"].as_str().is_none_or(str::is_empty) && !terminating(p)) {
        let Some((&node, _)) = load.iter().min_by_key(|(n, c)| (**c, *n)) else { return };
        let (ns, name) = ns_name(p);
        let now = now_rfc3339();
        let _ = store.modify(PODS, &ns, &name, |o| {
            o["spec"]["nodeName"] = json!(node);
            o["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}]);
        });
        if let Some(c) = load.get_mut(node) {
            *c += 1;
        }
    }
}

/// The port a Service port targets on one pod: a number, or a named container port of that pod.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => {
            if let Ok(n) = name.parse::<i64>() {
                return Some(n);
            }
            let proto = port["protocol"].as_str().unwrap_or("TCP");
            pod["spec"]["containers"]
                .as_array()?
                .iter()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find_map(|p| {
                    (p["name"] == json!(name) && p["protocol"].as_str().unwrap_or("TCP") == proto)
                        .then(|| p["containerPort"].as_i64())
                        .flatten()
                })
        }
        _ => port["port"].as_i64(),
    }
}

/// EndpointSlices (one per distinct resolution of the Service's ports) and the legacy Endpoints object.
fn reconcile_service(store: &Store, svc: &Value) {
    let (ns, name) = ns_name(svc);
    let selector = &svc["spec"]["selector"];
    let mine = |o: &Value| o["metadata"]["labels"]["kubernetes.io/service-name"] == json!(name);
    let existing: Vec<Arc<Value>> =
        store.list("discovery.k8s.io/endpointslices", Some(&ns)).0.into_iter().filter(|s| mine(s)).collect();
    if !selector.is_object() || selector.as_object().is_some_and(serde_json::Map::is_empty) {
        // Selectorless: endpoints are the user's to write.
        return;
    }
    let sel = LabelSelector::from_map(selector);
    let ports: Vec<Value> = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let pods: Vec<Arc<Value>> = store
        .list(PODS, Some(&ns))
        .0
        .into_iter()
        .filter(|p| sel.matches(p) && p["status"]["podIP"].is_string() && !pod_done(p))
        .collect();
    // Group pods by how the ports resolve on them.
    let mut groups: BTreeMap<Vec<Option<i64>>, Vec<&Value>> = BTreeMap::new();
    for p in &pods {
        let resolved: Vec<Option<i64>> = ports.iter().map(|sp| target_port(sp, p)).collect();
        groups.entry(resolved).or_default().push(p);
    }
    let mut wanted = BTreeSet::new();
    let mut subsets = Vec::new();
    for (resolved, members) in &groups {
        let slice_ports: Vec<Value> = ports
            .iter()
            .zip(resolved)
            .filter_map(|(sp, r)| r.map(|port| json!({"name": sp["name"].as_str().unwrap_or(""), "protocol": sp["protocol"].as_str().unwrap_or("TCP"), "port": port})))
            .collect();
        let endpoints: Vec<Value> = members
            .iter()
            .map(|p| {
                let ready = pod_ready(p) && !terminating(p);
                let mut e = json!({"addresses": [p["status"]["podIP"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": terminating(p)},
                    "nodeName": p["spec"]["nodeName"],
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}});
                if let Some(h) = p["spec"]["hostname"].as_str() {
                    e["hostname"] = json!(h);
                }
                e
            })
            .collect();
        let slice_name = format!("{name}-{}", short_hash(&json!([name, resolved]), 5));
        wanted.insert(slice_name.clone());
        let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": slice_name, "namespace": ns, "generateName": format!("{name}-"),
                         "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [owner_ref(svc, "Service", "v1")]},
            "endpoints": endpoints, "ports": slice_ports});
        upsert(store, "discovery.k8s.io/endpointslices", slice);
        let addrs = |ready: bool| -> Vec<Value> {
            members
                .iter()
                .filter(|p| (pod_ready(p) && !terminating(p)) == ready)
                .map(|p| json!({"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
                                "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"], "uid": p["metadata"]["uid"]}}))
                .collect()
        };
        let mut subset = json!({"ports": ports.iter().zip(resolved).filter_map(|(sp, r)| r.map(|port| {
            let mut x = json!({"protocol": sp["protocol"].as_str().unwrap_or("TCP"), "port": port});
            if let Some(n) = sp["name"].as_str() { x["name"] = json!(n); }
            x
        })).collect::<Vec<_>>()});
        let (ready, not_ready) = (addrs(true), addrs(false));
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        subsets.push(subset);
    }
    if groups.is_empty() {
        let slice_name = format!("{name}-{}", short_hash(&json!([name]), 5));
        wanted.insert(slice_name.clone());
        upsert(
            store,
            "discovery.k8s.io/endpointslices",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": slice_name, "namespace": ns, "generateName": format!("{name}-"),
                             "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                             "ownerReferences": [owner_ref(svc, "Service", "v1")]},
                "endpoints": [], "ports": null}),
        );
    }
    for s in existing {
        let sn = ns_name(&s).1;
        if !wanted.contains(&sn) {
            let _ = store.delete("discovery.k8s.io/endpointslices", &ns, &sn);
        }
    }
    let mut ep = json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "labels": svc["metadata"]["labels"].clone()}});
    if !subsets.is_empty() {
        ep["subsets"] = json!(subsets);
    }
    if ep["metadata"]["labels"].is_null() {
        ep["metadata"].as_object_mut().map(|m| m.remove("labels"));
    }
    upsert(store, "/endpoints", ep);
}

/// Creates, or updates when different (keeping identity fields).
fn upsert(store: &Store, resource: &str, obj: Value) {
    let (ns, name) = ns_name(&obj);
    match store.get(resource, &ns, &name) {
        None => {
            let _ = store.create(resource, obj);
        }
        Some(old) => {
            let mut new = obj;
            for f in ["uid", "creationTimestamp", "resourceVersion"] {
                if let Some(v) = old["metadata"].get(f) {
                    new["metadata"][f] = v.clone();
                }
            }
            if new != *old {
                let _ = store.update(resource, new, None);
            }
        }
    }
}

/// Namespaced resources the namespace controller empties.
const NAMESPACED: &[&str] = &[
    "apps/deployments",
    "apps/replicasets",
    "apps/statefulsets",
    "apps/daemonsets",
    "batch/jobs",
    "batch/cronjobs",
    "/replicationcontrollers",
    "/services",
    "/endpoints",
    "discovery.k8s.io/endpointslices",
    "networking.k8s.io/networkpolicies",
    "/configmaps",
    "/secrets",
    "/serviceaccounts",
    "/events",
];

fn reconcile_namespace(store: &Store, n: &Value) {
    if !terminating(n) {
        return;
    }
    let (_, ns) = ns_name(n);
    for r in NAMESPACED {
        for o in store.list(r, Some(&ns)).0 {
            let _ = store.delete(r, &ns, &ns_name(&o).1);
        }
    }
    let pods = store.list(PODS, Some(&ns)).0;
    for p in &pods {
        delete_pod(store, &ns, &ns_name(p).1);
    }
    if pods.is_empty() {
        let _ = store.delete("/namespaces", "", &ns);
    }
}

/// Deletes objects whose controller no longer exists (background cascading deletion).
fn collect_garbage(store: &Store, uids: &BTreeSet<String>) {
    for r in ["apps/replicasets", PODS, "discovery.k8s.io/endpointslices"] {
        for o in store.list(r, None).0 {
            if let Some(owner) = controller_uid(&o)
                && !uids.contains(owner)
            {
                let (ns, name) = ns_name(&o);
                if r == PODS {
                    delete_pod(store, &ns, &name);
                } else {
                    let _ = store.delete(r, &ns, &name);
                }
            }
        }
    }
}

/// Workload resources, in the order a pass reconciles them (owners before what they own).
const WORKLOADS: &[&str] = &[
    "apps/deployments",
    "apps/replicasets",
    "/replicationcontrollers",
    "apps/statefulsets",
    "apps/daemonsets",
    "batch/jobs",
];

/// Resources whose objects own others (their uids keep dependents alive).
const OWNERS: &[&str] = &[
    "apps/deployments",
    "apps/replicasets",
    "apps/statefulsets",
    "apps/daemonsets",
    "batch/jobs",
    "/replicationcontrollers",
    "/services",
];

/// The resource of an owner reference's kind, for the kinds whose controllers run here.
fn owner_resource(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => "apps/deployments",
        "ReplicaSet" => "apps/replicasets",
        "ReplicationController" => "/replicationcontrollers",
        "StatefulSet" => "apps/statefulsets",
        "DaemonSet" => "apps/daemonsets",
        "Job" => "batch/jobs",
        "Service" => "/services",
        _ => return None,
    })
}

/// What the controllers look at again: the objects a change concerns, as a work queue holds them
/// (deduplicated; each controller reads current state when it gets to the key, as Kubernetes' do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    /// `(resource, namespace, name)` of workloads, Services and Namespaces to reconcile.
    objects: BTreeSet<(&'static str, String, String)>,
    /// Pods may be waiting for a node.
    schedule: bool,
    /// Something with dependents may be gone.
    garbage: bool,
    /// The set of nodes changed: every DaemonSet.
    daemonsets: bool,
    /// Everything (start, or events were missed).
    all: bool,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        *self == Work::default()
    }

    /// Everything, as after a missed event.
    pub fn everything() -> Work {
        Work { all: true, ..Work::default() }
    }

    /// Adds what one event concerns.
    pub fn add(&mut self, store: &Store, ev: &crate::store::Event) {
        let versions = std::iter::once(&*ev.object).chain(ev.old.as_deref());
        if ev.kind == crate::store::EventType::Deleted {
            self.garbage = true;
        }
        for o in versions {
            for r in o["metadata"]["ownerReferences"].as_array().into_iter().flatten() {
                if let (Some(res), Some(name)) = (r["kind"].as_str().and_then(owner_resource), r["name"].as_str()) {
                    self.objects.insert((res, ev.namespace.clone(), name.to_owned()));
                }
            }
        }
        let resource = ev.resource.as_str();
        if let Some(r) = OWNERS.iter().chain(["/namespaces"].iter()).find(|r| **r == resource) {
            self.objects.insert((r, ev.namespace.clone(), ev.name.clone()));
        }
        match resource {
            PODS => {
                let pod = &ev.object;
                if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
                    self.schedule = true;
                }
                // The Services whose selector matches the pod now or did before.
                for svc in store.list("/services", Some(&ev.namespace)).0 {
                    let selector = &svc["spec"]["selector"];
                    if selector.as_object().is_none_or(|m| m.is_empty()) {
                        continue;
                    }
                    let sel = LabelSelector::from_map(selector);
                    if sel.matches(pod) || ev.old.as_deref().is_some_and(|o| sel.matches(o)) {
                        self.objects.insert(("/services", ev.namespace.clone(), ns_name(&svc).1));
                    }
                }
                if store.get("/namespaces", "", &ev.namespace).is_some_and(|n| terminating(&n)) {
                    self.objects.insert(("/namespaces", String::new(), ev.namespace.clone()));
                }
            }
            "/nodes" => {
                self.daemonsets = true;
                self.schedule = true;
            }
            _ => {}
        }
    }
}

/// Reconciles what `work` names (everything when it says so). Level-triggered: each controller reads the
/// current state of its object; its own writes come back as events and settle.
pub fn reconcile(store: &Store, work: &Work) {
    let nodes: Vec<String> = store.list("/nodes", None).0.iter().map(|n| ns_name(n).1).collect();
    if work.all || work.garbage {
        let mut uids = BTreeSet::new();
        for r in OWNERS {
            store.for_each(r, |o| {
                uids.insert(uid(o).to_owned());
            });
        }
        collect_garbage(store, &uids);
    }
    let chosen = |resource: &'static str| -> Vec<Arc<Value>> {
        if work.all || (resource == "apps/daemonsets" && work.daemonsets) {
            return store.list(resource, None).0;
        }
        work.objects
            .iter()
            .filter(|(r, _, _)| *r == resource)
            .filter_map(|(r, ns, name)| store.get(r, ns, name))
            .collect()
    };
    for r in WORKLOADS {
        for o in chosen(r) {
            match *r {
                "apps/deployments" => reconcile_deployment(store, &o),
                "apps/replicasets" => reconcile_replicas(store, r, &o, "ReplicaSet", "apps/v1"),
                "/replicationcontrollers" => reconcile_replicas(store, r, &o, "ReplicationController", "v1"),
                "apps/statefulsets" => reconcile_statefulset(store, &o),
                "apps/daemonsets" => reconcile_daemonset(store, &o, &nodes),
                _ => reconcile_job(store, &o),
            }
        }
    }
    if work.all || work.schedule {
        schedule(store, &nodes);
    }
    for s in chosen("/services") {
        reconcile_service(store, &s);
    }
    for n in chosen("/namespaces") {
        reconcile_namespace(store, &n);
    }
}

/// One pass of every controller over the whole store (the start, and a periodic resync).
pub fn reconcile_all(store: &Store) {
    reconcile(store, &Work::everything());
}

/// How often every object is reconciled regardless of events, as informers resync.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the controllers on what each change concerns (coalescing bursts), until the store's channel closes.
pub async fn run(store: Store) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let Ok((_, mut rx)) = store.watch(0) else { return };
    let mut work = Work::everything();
    loop {
        if !work.is_empty() {
            let s = store.clone();
            let w = std::mem::take(&mut work);
            let _ = tokio::task::spawn_blocking(move || reconcile(&s, &w)).await;
        }
        match tokio::time::timeout(RESYNC, rx.recv()).await {
            Err(_) => work = Work::everything(),
            Ok(Ok(ev)) => work.add(&store, &ev),
            Ok(Err(RecvError::Lagged(_))) => work = Work::everything(),
            Ok(Err(RecvError::Closed)) => return,
        }
        // Coalesce what arrives together into one pass.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        loop {
            match rx.try_recv() {
                Ok(ev) => work.add(&store, &ev),
                Err(TryRecvError::Lagged(_)) => work = Work::everything(),
                Err(TryRecvError::Closed) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
    }
}

/// For callers that need to tell a missing object from a conflict.
pub fn is_not_found(e: &StoreError) -> bool {
    matches!(e, StoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventType;

    fn deployment(name: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}},
                                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    fn service(name: &str, app: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
               "spec": {"selector": {"app": app}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}})
    }

    /// Runs the controllers on the work each event brings until nothing is left (as `run` does).
    fn settle(store: &Store, from: u64) -> u64 {
        let mut seen = from;
        for _ in 0..50 {
            let (events, _) = store.watch(seen).unwrap();
            if events.is_empty() {
                return seen;
            }
            let mut work = Work::default();
            for e in &events {
                work.add(store, e);
                seen = e.rv;
            }
            reconcile(store, &work);
        }
        panic!("the controllers did not settle");
    }

    #[test]
    fn a_deployment_gets_a_replicaset_and_named_pods_owned_in_turn() {
        let store = Store::new(10_000);
        store.create("/nodes", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"}})).unwrap();
        let start = store.current_rv();
        store.create("apps/deployments", deployment("web", 3)).unwrap();
        settle(&store, start);
        let rs = store.list("apps/replicasets", Some("default")).0;
        assert_eq!(rs.len(), 1);
        let rs_name = ns_name(&rs[0]).1;
        let hash = rs[0]["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_owned();
        assert_eq!(rs_name, format!("web-{hash}"));
        let pods = store.list(PODS, Some("default")).0;
        assert_eq!(pods.len(), 3);
        for p in &pods {
            assert!(ns_name(p).1.starts_with(&format!("{rs_name}-")), "{}", ns_name(p).1);
            assert_eq!(controller_uid(p), Some(uid(&rs[0])));
            assert_eq!(p["spec"]["nodeName"], "node-0", "the scheduler bound it");
        }
    }

    #[test]
    fn a_pod_event_concerns_its_owner_and_the_services_selecting_it_only() {
        let store = Store::new(10_000);
        store
            .create("/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}))
            .unwrap();
        store.create("/services", service("web", "web")).unwrap();
        store.create("/services", service("db", "db")).unwrap();
        let from = store.current_rv();
        store
            .create(
                PODS,
                json!({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                                    "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "uid": "u1", "controller": true}]},
                       "spec": {"nodeName": "node-0"}}),
            )
            .unwrap();
        let (events, _) = store.watch(from).unwrap();
        let mut work = Work::default();
        work.add(&store, &events[0]);
        let objects: Vec<_> = work.objects.iter().map(|(r, ns, n)| format!("{r} {ns}/{n}")).collect();
        assert_eq!(objects, ["/services default/web", "apps/replicasets default/web-abc"]);
        assert!(!work.schedule, "the pod is bound already");
        assert!(!work.garbage && !work.all);
        // Deleting it may leave dependents without an owner: garbage collection runs.
        store.delete(PODS, "default", "web-1").unwrap();
        let (events, _) = store.watch(events[0].rv).unwrap();
        assert_eq!(events[0].kind, EventType::Deleted);
        let mut work = Work::default();
        work.add(&store, &events[0]);
        assert!(work.garbage);
    }

    #[test]
    fn a_service_lists_its_ready_pods_in_an_endpointslice() {
        let store = Store::new(10_000);
        store.create("/nodes", json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"}})).unwrap();
        let start = store.current_rv();
        store.create("apps/deployments", deployment("web", 2)).unwrap();
        store.create("/services", service("web", "web")).unwrap();
        let mut seen = settle(&store, start);
        // The kubelet's part: the pods run and are ready.
        for (i, p) in store.list(PODS, Some("default")).0.iter().enumerate() {
            let status = json!({"phase": "Running", "podIP": format!("10.244.0.{}", i + 10),
                                "conditions": [{"type": "Ready", "status": "True"}]});
            store.modify(PODS, "default", &ns_name(p).1, |o| o["status"] = status).unwrap();
        }
        seen = settle(&store, seen);
        let slices = store.list("discovery.k8s.io/endpointslices", Some("default")).0;
        assert_eq!(slices.len(), 1);
        let mut addrs: Vec<&str> =
            slices[0]["endpoints"].as_array().unwrap().iter().map(|e| e["addresses"][0].as_str().unwrap()).collect();
        addrs.sort_unstable();
        assert_eq!(addrs, ["10.244.0.10", "10.244.0.11"]);
        // Scaled down to one: the slice follows.
        store.modify("apps/deployments", "default", "web", |d| d["spec"]["replicas"] = json!(1)).unwrap();
        settle(&store, seen);
        let live = store.list(PODS, Some("default")).0.into_iter().filter(|p| !terminating(p)).count();
        assert_eq!(live, 1);
    }
}
