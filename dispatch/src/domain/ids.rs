//! Identifiers of the domain's things, as distinct types so a crew id can never be passed
//! where a ticket id is meant.
//!
//! Each holds its text in an `Arc<str>`: the engine copies ids into events, queue keys,
//! deadlines and indexes (a new ticket's id about fifteen times), and a copy is then a
//! reference count, not an allocation.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A fault ticket: one customer report.
    TicketId
);
id_type!(
    /// An incident: one fault in the network, which may have many reports (tickets).
    IncidentId
);
id_type!(
    /// A repair crew (抢修班组).
    CrewId
);
id_type!(
    /// A supply station (供电所) and its service area.
    StationId
);
