//! Palisade's policy engine: the exact `networking.k8s.io/v1` NetworkPolicy semantics, apiserver-equal
//! validation, and verdicts that explain themselves.
//!
//! Invariant: the engine does no I/O. It takes manifest text and values, and returns values.

pub mod bitset;
pub mod cidr;
pub mod cnp;
pub mod explain;
pub mod field;
pub mod index;
pub mod load;
pub mod model;
pub mod names;
pub mod policy;
pub mod reference;
pub mod store;
pub mod synth;
pub mod validate;
pub mod verdict;

pub use index::{ConnectionError, Index, Matrix, PodId};
pub use load::{Loaded, Located, Origin, load_str};
pub use model::{Cluster, IpFamily, Kind, Object, ObjectKey, Protocol};
pub use policy::Direction;
pub use store::Store;
pub use verdict::{Connection, Endpoint, NearMiss, RuleMatch, Side, Verdict};
