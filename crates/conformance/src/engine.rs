//! The engine as a conformance backend: verdicts from the model, no packets.

use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::{Cluster, Connection, Index, Kind, Object};

use crate::{Backend, CaseError, ExternalHost};

/// Answers probes with [`Index::decide`]; the index is rebuilt lazily after each change.
#[derive(Debug, Default)]
pub struct EngineBackend {
    cluster: Cluster,
    index: Option<Index>,
}

impl EngineBackend {
    pub fn new() -> Self {
        Self::default()
    }

    fn index(&mut self) -> &Index {
        self.index.get_or_insert_with(|| Index::build(&self.cluster))
    }
}

impl Backend for EngineBackend {
    fn reset(&mut self, objects: &[Object], _external_hosts: &[ExternalHost]) -> Result<(), CaseError> {
        self.cluster = Cluster::from_objects(objects.iter().cloned());
        self.index = None;
        Ok(())
    }

    fn apply(&mut self, objects: &[Object]) -> Result<(), CaseError> {
        for o in objects {
            self.cluster.apply(o.clone());
        }
        self.index = None;
        Ok(())
    }

    fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<(), CaseError> {
        self.cluster.delete(kind, namespace, name);
        self.index = None;
        Ok(())
    }

    fn apply_cluster(&mut self, objects: &[ClusterObject]) -> Result<(), CaseError> {
        for o in objects {
            self.cluster.apply_cluster(o.clone());
        }
        self.index = None;
        Ok(())
    }

    fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> Result<(), CaseError> {
        self.cluster.delete_cluster(kind, name);
        self.index = None;
        Ok(())
    }

    fn probe(&mut self, connections: &[Connection]) -> Result<Vec<bool>, CaseError> {
        let index = self.index();
        connections
            .iter()
            .map(|c| index.decide(c).map(|v| v.allowed).map_err(|e| CaseError(format!("{c}: {e}"))))
            .collect()
    }
}
