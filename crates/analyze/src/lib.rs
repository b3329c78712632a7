//! Workload-level analysis of manifests, before any cluster runs them: the connectivity list (agreeing with
//! netpol-analyzer's `list`, with its exposure analysis and focus workloads), lint findings, and the difference
//! between two versions.
//!
//! Invariant: no I/O; callers pass loaded manifests and get values back.

pub mod connlist;
pub mod diff;
pub mod exposure;
pub mod lint;
pub mod model;
pub mod ports;
pub mod render;
pub mod tierlint;
pub mod tierreach;
mod tiers;

pub use connlist::{Connection, connlist, render_txt};
pub use model::{Model, Workload};
pub use ports::PortSet;
