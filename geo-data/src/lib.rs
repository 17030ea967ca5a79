//! Regions from real geography: the region directory's format, its reader, and the generator
//! of supply stations, service areas and crews (`geo-data generate`, see [`generate`]).

pub mod areas;
pub mod crews;
pub mod customers;
pub mod format;
pub mod generate;
pub mod input;
pub mod output;
pub mod projection;
pub mod region;
pub mod stations;
