//! Integration tests of the engine: properties against the reference evaluator, and the conformance corpus.

mod properties;
mod tiers;
