//! NetworkPolicy validation equal to the apiserver's (`pkg/apis/networking/validation`), reporting every error.

use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cidr::parse_cidr_sloppy;
use crate::field::{FieldError, Path};
use crate::model::Labels;
use crate::names;

const INVALID_CIDR: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// All the errors the apiserver would return when creating this NetworkPolicy, in its order.
pub fn validate_network_policy(policy: &NetworkPolicy) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&policy.metadata, true, &Path::new("metadata"));
    let spec_path = Path::new("spec");
    let spec = policy.spec.clone().unwrap_or_default();
    errs.extend(validate_label_selector(
        &spec.pod_selector.clone().unwrap_or_default(),
        &spec_path.child("podSelector"),
    ));
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let path = spec_path.child("ingress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &path.child("ports").index(j)));
        }
        for (j, peer) in rule.from.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &path.child("from").index(j)));
        }
    }
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let path = spec_path.child("egress").index(i);
        for (j, port) in rule.ports.iter().flatten().enumerate() {
            errs.extend(validate_port(port, &path.child("ports").index(j)));
        }
        for (j, peer) in rule.to.iter().flatten().enumerate() {
            errs.extend(validate_peer(peer, &path.child("to").index(j)));
        }
    }
    let types = spec.policy_types.unwrap_or_default();
    if types.len() > 2 {
        let shown = format!("[{}]", types.join(" "));
        errs.push(FieldError::invalid(
            spec_path.child("policyTypes"),
            crate::field::BadValue::Raw(shown),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, t) in types.iter().enumerate() {
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(
                spec_path.child("policyTypes").index(i),
                t.as_str(),
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}

/// `ValidateObjectMeta` for a namespaced object named as a DNS subdomain, plus its labels.
pub fn validate_object_meta(meta: &ObjectMeta, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match meta.name.as_deref() {
        None | Some("") => {
            if meta.generate_name.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(path.child("name"), "name or generateName is required"));
            }
        }
        Some(name) => {
            for msg in names::is_dns1123_subdomain(name) {
                errs.push(FieldError::invalid(path.child("name"), name, &msg));
            }
        }
    }
    if namespaced && let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        for msg in names::is_dns1123_label(ns) {
            errs.push(FieldError::invalid(path.child("namespace"), ns, &msg));
        }
    }
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    errs
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn validate_labels(labels: &Labels, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in names::is_qualified_name(k) {
            errs.push(FieldError::invalid(path.clone(), k.as_str(), &msg));
        }
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path.clone(), v.as_str(), &msg));
        }
    }
    errs
}

/// `ValidateLabelSelector` with the options the apiserver uses for new NetworkPolicies.
pub fn validate_label_selector(sel: &LabelSelector, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let rp = path.child("matchExpressions").index(i);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        rp.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        rp.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(rp.child("operator"), op, "not a valid selector operator")),
        }
        for msg in names::is_qualified_name(&req.key) {
            errs.push(FieldError::invalid(rp.child("key"), req.key.as_str(), &msg));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(rp.child("values").index(j), v.as_str(), &msg));
            }
        }
    }
    if let Some(labels) = &sel.match_labels {
        errs.extend(validate_labels(labels, &path.child("matchLabels")));
    }
    errs
}

/// `ValidateNetworkPolicyPort`.
fn validate_port(port: &NetworkPolicyPort, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(p) = port.protocol.as_deref()
        && !matches!(p, "TCP" | "UDP" | "SCTP")
    {
        errs.push(FieldError::not_supported(path.child("protocol"), p, &["SCTP", "TCP", "UDP"]));
    }
    match &port.port {
        Some(IntOrString::Int(n)) => {
            for msg in names::is_valid_port_num((*n).into()) {
                errs.push(FieldError::invalid(path.child("port"), *n, &msg));
            }
            if let Some(end) = port.end_port {
                if end < *n {
                    errs.push(FieldError::invalid(
                        path.child("endPort"),
                        *n,
                        "must be greater than or equal to `port`",
                    ));
                }
                for msg in names::is_valid_port_num(end.into()) {
                    errs.push(FieldError::invalid(path.child("endPort"), end, &msg));
                }
            }
        }
        Some(IntOrString::String(s)) => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    path.child("endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(path.child("port"), s.as_str(), &msg));
            }
        }
        None => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    path.child("endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

/// `ValidateNetworkPolicyPeer`: exactly an ipBlock, or a podSelector and/or namespaceSelector.
fn validate_peer(peer: &NetworkPolicyPeer, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut count = 0;
    if let Some(sel) = &peer.pod_selector {
        count += 1;
        errs.extend(validate_label_selector(sel, &path.child("podSelector")));
    }
    if let Some(sel) = &peer.namespace_selector {
        count += 1;
        errs.extend(validate_label_selector(sel, &path.child("namespaceSelector")));
    }
    if let Some(block) = &peer.ip_block {
        count += 1;
        errs.extend(validate_ip_block(block, &path.child("ipBlock")));
    }
    if count == 0 {
        errs.push(FieldError::required(path.clone(), "must specify a peer"));
    } else if count > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(path.clone(), "may not specify both ipBlock and another peer"));
    }
    errs
}

/// `ValidateIPBlock`: a valid CIDR, each `except` a valid CIDR strictly inside it.
fn validate_ip_block(block: &IPBlock, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if block.cidr.is_empty() {
        errs.push(FieldError::required(path.child("cidr"), ""));
        return errs;
    }
    let Some(cidr) = parse_cidr_sloppy(&block.cidr) else {
        errs.push(FieldError::invalid(path.child("cidr"), block.cidr.as_str(), INVALID_CIDR));
        return errs;
    };
    for (i, ex) in block.except.iter().flatten().enumerate() {
        let ep = path.child("except").index(i);
        let Some(except) = parse_cidr_sloppy(ex) else {
            errs.push(FieldError::invalid(ep, ex.as_str(), INVALID_CIDR));
            continue;
        };
        if !cidr.contains(&except.network()) || cidr.prefix_len() >= except.prefix_len() {
            errs.push(FieldError::invalid(ep, ex.as_str(), "must be a strict subset of `cidr`"));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        let policy: NetworkPolicy = serde_saphyr::from_str(yaml).unwrap();
        validate_network_policy(&policy).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_valid_policy_has_no_errors() {
        let e = errors(
            "metadata: {name: db, namespace: default}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}\n    - namespaceSelector: {matchLabels: {project: myproject}}\n      podSelector: {}\n    ports:\n    - {protocol: TCP, port: 6379}\n    - {port: 32000, endPort: 32768}\n    - {port: http, protocol: SCTP}\n  policyTypes: [Ingress]\n",
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn every_error_is_reported_in_the_apiservers_words() {
        let e = errors(
            "metadata: {name: Bad_Name, namespace: default}\nspec:\n  podSelector:\n    matchExpressions:\n    - {key: app, operator: In}\n    - {key: tier, operator: Exists, values: [a]}\n    - {key: x, operator: Maybe}\n  ingress:\n  - ports:\n    - {port: 90, endPort: 80}\n    - {port: 0, protocol: ICMP}\n    - {port: web, endPort: 81}\n    - {endPort: 81}\n    from:\n    - {}\n    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8, 192.168.0.0/16, nope]}\n      podSelector: {}\n    - ipBlock: {cidr: 10.0.0.0/33}\n  policyTypes: [Ingress, Sideways]\n",
        );
        let expected = [
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.podSelector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            "spec.podSelector.matchExpressions[2].operator: Invalid value: \"Maybe\": not a valid selector operator",
            "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`",
            "spec.ingress[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.ingress[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.ingress[0].ports[2].endPort: Invalid value: 81: may not be specified when `port` is non-numeric",
            "spec.ingress[0].ports[3].endPort: Invalid value: 81: may not be specified when `port` is not specified",
            "spec.ingress[0].from[0]: Required value: must specify a peer",
            "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"192.168.0.0/16\": must be a strict subset of `cidr`",
            "spec.ingress[0].from[1].ipBlock.except[2]: Invalid value: \"nope\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
            "spec.ingress[0].from[2].ipBlock.cidr: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            "spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
        ];
        assert_eq!(e, expected);
    }

    #[test]
    fn labels_and_namespace_are_checked() {
        let e = errors(
            "metadata: {name: p, namespace: Prod}\nspec:\n  podSelector: {matchLabels: {'a b': 'x y'}}\n  egress:\n  - to:\n    - namespaceSelector: {matchLabels: {ok: fine}}\n",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("metadata.namespace: Invalid value: \"Prod\": a lowercase RFC 1123 label"));
        assert!(e[1].starts_with("spec.podSelector.matchLabels: Invalid value: \"a b\": name part must consist"));
        assert!(e[2].starts_with("spec.podSelector.matchLabels: Invalid value: \"x y\": a valid label must be"));
    }

    #[test]
    fn too_many_policy_types() {
        let e = errors("metadata: {name: p}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress, Ingress]\n");
        assert_eq!(
            e,
            vec![
                "spec.policyTypes: Invalid value: [Ingress Egress Ingress]: may not specify more than two policyTypes"
            ]
        );
    }
}
