//! Spatial indexes: which service area holds a point, and which free crews or open incidents
//! are near it. Pure data structures over `rstar` and `geo`; no clocks, no I/O.

mod crew_index;
mod point_index;
mod projection;
mod service_areas;

pub use crew_index::CrewIndex;
pub use point_index::PointIndex;
pub use projection::LocalProjection;
pub use service_areas::{Located, OutsideServiceAreas, ServiceAreaIndex};
