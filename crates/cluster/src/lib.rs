//! A small real Kubernetes cluster on one machine, around Palisade's sandbox: one object store and the
//! roles of a cluster as separate modules, so the real `kubectl` drives it and the node agent runs its
//! cluster code path.
//!
//! - `store`: objects with resourceVersions and a window of events for watches (`410 Gone` past it).
//! - `apiserver`: the REST API (discovery, OpenAPI, CRUD, apply, Tables, watch, exec) over TLS with a token;
//!   `strategy` (defaulting and validation per kind), `patch`, `table`, `protobuf`, `selector`, `exec`.
//! - `controllers`: workloads → pods, Services → EndpointSlices, scheduling, namespaces, garbage collection.
//! - `kubelet`: pods bound to a node become network namespaces (through the sandbox) and get their status.
//! - `node`: the node roles' loop, and the Palisade dataplane of a single-node sandbox.
//! - `kubeproxy` + `proxy`: Services → nftables DNAT in each node namespace.
//! - `dns`: cluster DNS (hickory) served inside the `kube-dns` pod's namespace.
//! - `controlplane`: the process that runs them all; `tls`: its CA, certificate, token and kubeconfig.
//! - `conformance`: the corpus run live on a control plane with one agent per node (`--live --nodes N`).

pub mod apiserver;
pub mod client;
pub mod conformance;
pub mod controllers;
pub mod controlplane;
pub mod dns;
pub mod exec;
pub mod kubelet;
pub mod kubeproxy;
pub mod node;
pub mod patch;
pub mod protobuf;
pub mod proxy;
pub mod resources;
pub mod selector;
pub mod store;
pub mod strategy;
pub mod table;
pub mod tls;
