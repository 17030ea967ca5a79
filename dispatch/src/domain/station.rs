//! A supply station (供电所): the unit that owns a service area, its crews and its customers.

use super::{AreaClass, LatLon, StationId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    pub area_class: AreaClass,
    /// Low-voltage customers served: the denominator of the reliability indices.
    pub customers: u64,
    pub district: String,
    pub location: LatLon,
}
