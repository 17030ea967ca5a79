//! The fault heat map: reports counted per H3 cell, so the control room sees where faults
//! cluster at a scale that does not depend on how the service areas were drawn.
//!
//! Every report counts, repeats included: a street with ten callers is hotter than one with
//! one, which is what a supervisor moving crews before a storm peak wants to see.

use super::Window;
use crate::domain::Ticket;
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::HashMap;

/// H3 resolutions the heat map accepts: from about 250 km² (5) to 0.1 km² (9) a cell.
pub const RESOLUTIONS: std::ops::RangeInclusive<u8> = 5..=9;
/// About 5 km² a cell: a township's few villages, or a few city blocks.
pub const DEFAULT_RESOLUTION: u8 = 7;

/// One cell of the heat map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultCell {
    pub cell: CellIndex,
    /// Reports made in the window whose location is in the cell.
    pub reports: u64,
    /// Of those, the tickets still open (not closed, cancelled or merged).
    pub open: u64,
}

/// Reports of `tickets` made within `window`, per cell at `resolution`, hottest first (ties
/// by cell, so the order never depends on hashing).
pub fn fault_cells<'a>(
    tickets: impl IntoIterator<Item = &'a Ticket>,
    window: Window,
    resolution: Resolution,
) -> Vec<FaultCell> {
    let mut counts: HashMap<CellIndex, (u64, u64)> = HashMap::new();
    for ticket in tickets {
        if !window.contains(ticket.reported_at) {
            continue;
        }
        let at = ticket.report.location;
        // Locations are validated on the way in; a point h3o refuses is simply not drawn.
        let Ok(point) = LatLng::new(at.lat(), at.lon()) else {
            continue;
        };
        let entry = counts.entry(point.to_cell(resolution)).or_default();
        entry.0 += 1;
        if !ticket.state.is_final() {
            entry.1 += 1;
        }
    }
    let mut cells: Vec<FaultCell> = counts
        .into_iter()
        .map(|(cell, (reports, open))| FaultCell {
            cell,
            reports,
            open,
        })
        .collect();
    cells.sort_by(|a, b| b.reports.cmp(&a.reports).then(a.cell.cmp(&b.cell)));
    cells
}

/// The outline of a cell as a closed ring of `[lon, lat]` pairs, as GeoJSON wants it.
pub fn cell_ring(cell: CellIndex) -> Vec<[f64; 2]> {
    let boundary = cell.boundary();
    let mut ring: Vec<[f64; 2]> = boundary.iter().map(|p| [p.lng(), p.lat()]).collect();
    if let Some(first) = ring.first().copied() {
        ring.push(first);
    }
    ring
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        AreaClass, Caller, FaultCategory, FaultReport, IncidentId, LatLon, Priority, StationId,
        TicketId, TicketState, Timestamp,
    };

    fn ticket(n: u32, lat: f64, lon: f64, minute: u32, state: TicketState) -> Ticket {
        let report = FaultReport {
            caller: Caller {
                name: String::new(),
                phone: "13800001234".into(),
            },
            location: LatLon::new(lat, lon).unwrap(),
            address: "x".into(),
            category: FaultCategory::NoPower,
            priority: Priority::Normal,
            important_customer: false,
            description: String::new(),
        };
        let mut t = Ticket::new(
            TicketId::new(format!("t{n}")),
            IncidentId::new(format!("i{n}")),
            StationId::new("s"),
            AreaClass::Urban,
            report,
            Timestamp::from_millis(0).plus_minutes(minute),
            None,
        );
        t.state = state;
        t
    }

    fn window(from_minute: u32, to_minute: u32) -> Window {
        let t0 = Timestamp::from_millis(0);
        Window::new(t0.plus_minutes(from_minute), t0.plus_minutes(to_minute)).unwrap()
    }

    #[test]
    fn reports_in_the_window_count_per_cell_hottest_first() {
        let seven = Resolution::try_from(DEFAULT_RESOLUTION).unwrap();
        // Two reports 50 m apart share a cell; one 20 km away has its own; one reported
        // after the window does not count.
        let tickets = [
            ticket(1, 23.1100, 114.4150, 1, TicketState::Dispatched),
            ticket(2, 23.1104, 114.4153, 2, TicketState::Merged),
            ticket(3, 23.2900, 114.4150, 3, TicketState::Closed),
            ticket(4, 23.1100, 114.4150, 90, TicketState::Queued),
        ];
        let cells = fault_cells(&tickets, window(0, 60), seven);
        assert_eq!(cells.len(), 2, "{cells:?}");
        assert_eq!((cells[0].reports, cells[0].open), (2, 1));
        assert_eq!((cells[1].reports, cells[1].open), (1, 0));
        let home = LatLng::new(23.1100, 114.4150).unwrap().to_cell(seven);
        assert_eq!(cells[0].cell, home);
    }

    #[test]
    fn a_cell_ring_is_closed_and_surrounds_its_centre() {
        let cell = LatLng::new(23.11, 114.415)
            .unwrap()
            .to_cell(Resolution::try_from(DEFAULT_RESOLUTION).unwrap());
        let ring = cell_ring(cell);
        assert!(ring.len() >= 7, "a hexagon and its closing point: {ring:?}");
        assert_eq!(ring.first(), ring.last());
        let (min_lon, max_lon) = ring.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p[0]), hi.max(p[0]))
        });
        assert!(min_lon < 114.415 && 114.415 < max_lon, "{ring:?}");
        // A resolution-7 cell is about 2.6 km across.
        assert!((max_lon - min_lon) < 0.05, "{ring:?}");
    }
}
