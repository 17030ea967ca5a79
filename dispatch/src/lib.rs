//! The dispatch service: for a fault report, which station owns it and which crew goes; then
//! every step of the ticket's life against its deadlines.
//!
//! `domain` is the pure core, `geo` the spatial indexes, `engine` the decisions that combine
//! them. See ARCHITECTURE.md for the map.

pub mod domain;
pub mod engine;
pub mod geo;
pub mod region;
pub mod store;
