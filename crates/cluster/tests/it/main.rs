//! The API server against its real clients: the machine's kubectl and kube-rs, with the controllers running
//! and a stand-in kubelet that marks bound pods Running (no namespaces: no root needed).

mod api;
