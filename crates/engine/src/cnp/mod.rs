//! ClusterNetworkPolicy (v1alpha2) and AdminNetworkPolicy / BaselineAdminNetworkPolicy (v1alpha1): the
//! cluster-scoped objects of the Admin and Baseline tiers, and the Nodes their `nodes` peer reads.
//!
//! Both API versions are read as one v1alpha2 spec ([`TierPolicy`]): v1alpha1 maps onto the same tiers
//! (`Allow` = `Accept`, the BaselineAdminNetworkPolicy is a Baseline policy sorted after every Baseline
//! ClusterNetworkPolicy).

pub mod explain;
pub mod lower;
pub mod tiers;
pub mod types;
pub mod validate;

use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub use types::*;

/// The API group of all three policy kinds.
pub const GROUP: &str = "policy.networking.k8s.io";

/// A cluster-scoped object the tiers read.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterObject {
    ClusterNetworkPolicy(Box<ClusterNetworkPolicy>),
    AdminNetworkPolicy(Box<AdminNetworkPolicy>),
    BaselineAdminNetworkPolicy(Box<BaselineAdminNetworkPolicy>),
    Node(Box<Node>),
}

impl ClusterObject {
    pub fn kind(&self) -> ClusterKind {
        match self {
            ClusterObject::ClusterNetworkPolicy(_) => ClusterKind::ClusterNetworkPolicy,
            ClusterObject::AdminNetworkPolicy(_) => ClusterKind::AdminNetworkPolicy,
            ClusterObject::BaselineAdminNetworkPolicy(_) => ClusterKind::BaselineAdminNetworkPolicy,
            ClusterObject::Node(_) => ClusterKind::Node,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            ClusterObject::ClusterNetworkPolicy(o) => &o.metadata,
            ClusterObject::AdminNetworkPolicy(o) => &o.metadata,
            ClusterObject::BaselineAdminNetworkPolicy(o) => &o.metadata,
            ClusterObject::Node(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The policy as one v1alpha2 spec; `None` for a Node.
    pub fn as_policy(&self) -> Option<TierPolicy> {
        let (kind, spec) = match self {
            ClusterObject::ClusterNetworkPolicy(o) => {
                (PolicyKind::ClusterNetworkPolicy, o.spec.clone().unwrap_or_default())
            }
            ClusterObject::AdminNetworkPolicy(o) => {
                (PolicyKind::AdminNetworkPolicy, o.spec.clone().unwrap_or_default().to_v1alpha2())
            }
            ClusterObject::BaselineAdminNetworkPolicy(o) => {
                (PolicyKind::BaselineAdminNetworkPolicy, o.spec.clone().unwrap_or_default().to_v1alpha2())
            }
            ClusterObject::Node(_) => return None,
        };
        Some(TierPolicy { kind, name: self.name().to_owned(), spec })
    }

    /// `apiVersion` and `kind` as a manifest spells them.
    pub fn type_meta(&self) -> (&'static str, &'static str) {
        match self {
            ClusterObject::ClusterNetworkPolicy(_) => ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"),
            ClusterObject::AdminNetworkPolicy(_) => ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
            ClusterObject::BaselineAdminNetworkPolicy(_) => {
                ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy")
            }
            ClusterObject::Node(_) => ("v1", "Node"),
        }
    }
}

/// The kinds of [`ClusterObject`], as `delete` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClusterKind {
    ClusterNetworkPolicy,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
    Node,
}

impl FromStr for ClusterKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "clusternetworkpolicy" | "clusternetworkpolicies" | "cnp" => Ok(ClusterKind::ClusterNetworkPolicy),
            "adminnetworkpolicy" | "adminnetworkpolicies" | "anp" => Ok(ClusterKind::AdminNetworkPolicy),
            "baselineadminnetworkpolicy" | "baselineadminnetworkpolicies" | "banp" => {
                Ok(ClusterKind::BaselineAdminNetworkPolicy)
            }
            "node" | "nodes" | "no" => Ok(ClusterKind::Node),
            _ => Err(format!("unknown cluster-scoped kind {s:?}")),
        }
    }
}

/// Which API kind a tier policy was written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PolicyKind {
    ClusterNetworkPolicy,
    AdminNetworkPolicy,
    BaselineAdminNetworkPolicy,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::ClusterNetworkPolicy => "ClusterNetworkPolicy",
            PolicyKind::AdminNetworkPolicy => "AdminNetworkPolicy",
            PolicyKind::BaselineAdminNetworkPolicy => "BaselineAdminNetworkPolicy",
        }
    }

    pub fn cluster_kind(self) -> ClusterKind {
        match self {
            PolicyKind::ClusterNetworkPolicy => ClusterKind::ClusterNetworkPolicy,
            PolicyKind::AdminNetworkPolicy => ClusterKind::AdminNetworkPolicy,
            PolicyKind::BaselineAdminNetworkPolicy => ClusterKind::BaselineAdminNetworkPolicy,
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tier a policy sits in: Admin before NetworkPolicy, Baseline after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Tier {
    Admin,
    Baseline,
}

impl Tier {
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "Admin" => Some(Tier::Admin),
            "Baseline" => Some(Tier::Baseline),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Admin => "Admin",
            Tier::Baseline => "Baseline",
        })
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    Accept,
    Deny,
    /// Leave the tier: skip its remaining rules and policies.
    Pass,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "Accept" => Some(Action::Accept),
            "Deny" => Some(Action::Deny),
            "Pass" => Some(Action::Pass),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Accept => "Accept",
            Action::Deny => "Deny",
            Action::Pass => "Pass",
        })
    }
}

/// A tier policy of either API version, read as a v1alpha2 spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TierPolicy {
    pub kind: PolicyKind,
    pub name: String,
    pub spec: ClusterNetworkPolicySpec,
}

impl TierPolicy {
    /// The tier, `None` when `spec.tier` is not one validation accepts (such a policy takes no part).
    pub fn tier(&self) -> Option<Tier> {
        self.spec.tier.as_deref().and_then(Tier::parse)
    }

    /// The order policies of one tier are walked in: ascending priority, then name (equal priorities are
    /// undefined by the API; KNP and Calico both break the tie by name), then kind.
    pub fn order_key(&self) -> (i64, &str, PolicyKind) {
        (self.spec.priority.unwrap_or(i64::MAX), &self.name, self.kind)
    }
}

/// `ClusterNetworkPolicy deny-from-z`.
pub fn policy_title(kind: PolicyKind, name: &str) -> String {
    format!("{kind} {name}")
}

/// The kinds [`decode_cluster_object`] reads.
pub const CLUSTER_KINDS: [&str; 4] =
    ["ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "Node"];

/// Decodes a document of one of [`CLUSTER_KINDS`] (anything else is read as a Node). The loader's hook:
/// errors are in its form (`path: message`, apiVersion mismatches named).
pub fn decode_cluster_object(kind: &str, api_version: &str, doc: serde_json::Value) -> Result<ClusterObject, String> {
    let expected = match kind {
        "ClusterNetworkPolicy" => "policy.networking.k8s.io/v1alpha2",
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => "policy.networking.k8s.io/v1alpha1",
        _ => "v1",
    };
    if !(api_version == expected || api_version.is_empty()) {
        return Err(format!("apiVersion {api_version:?} is not supported (expected {expected:?})"));
    }
    fn decode<T: serde::de::DeserializeOwned>(doc: serde_json::Value) -> Result<T, String> {
        serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." { inner } else { format!("{path}: {inner}") }
        })
    }
    let decoded = match kind {
        "ClusterNetworkPolicy" => decode(doc).map(|p| ClusterObject::ClusterNetworkPolicy(Box::new(p))),
        "AdminNetworkPolicy" => decode(doc).map(|p| ClusterObject::AdminNetworkPolicy(Box::new(p))),
        "BaselineAdminNetworkPolicy" => decode(doc).map(|p| ClusterObject::BaselineAdminNetworkPolicy(Box::new(p))),
        _ => decode(doc).map(|p| ClusterObject::Node(Box::new(p))),
    };
    decoded.and_then(|o| {
        if o.name().is_empty() {
            Err("metadata.name: Required value: name or generateName is required".to_owned())
        } else {
            Ok(o)
        }
    })
}
