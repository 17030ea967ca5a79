//! Choosing the crew for a ticket at once: the rules, as functions of the pool and the ticket
//! only.
//!
//! The `nearest` rule ([`choose_crew`]): among eligible crews (available, with the required
//! skill, not having declined this job, and of the ticket's own station or at most
//! `borrow_reach_minutes` away), take the shortest estimated travel (ties: own station, then
//! lower crew id); but send the best crew of the ticket's own station instead unless that one
//! arrives more than the configured margin later. Two small searches find both: the nearest
//! few crews of the skill tree, and the own station's short list. The reach needs no search
//! of its own: when the nearest crew of another station is beyond it, so is every other
//! crew of another station, and only the own station's best remains.
//!
//! The `station` rule ([`choose_own_crew`]): the own station's best by the same order, or
//! none: the ticket waits for one of its own station's crews.

use super::config::EngineConfig;
use crate::domain::{Crew, LatLon, Ticket};
use crate::geo::CrewIndex;
use std::cmp::Ordering;

/// The chosen crew (its dense index) and its estimated travel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub crew: u32,
    pub eta_minutes: f64,
}

#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    crew: u32,
    eta_minutes: f64,
    own_station: bool,
    record: &'a Crew,
}

impl Candidate<'_> {
    fn better_than(&self, other: &Candidate) -> bool {
        self.eta_minutes
            .total_cmp(&other.eta_minutes)
            .then(other.own_station.cmp(&self.own_station))
            .then(self.record.id.cmp(&other.record.id))
            == Ordering::Less
    }
}

/// Picks the crew for `ticket`, whose station has dense index `station` (`None` when the
/// station has no crews list). `crews` resolves dense crew indexes, `project` maps a point
/// into the pool's kilometre plane.
pub fn choose_crew<'a>(
    config: &EngineConfig,
    pool: &CrewIndex,
    crews: impl Fn(u32) -> Option<&'a Crew>,
    project: impl Fn(LatLon) -> [f64; 2],
    ticket: &Ticket,
    station: Option<u32>,
) -> Option<Choice> {
    let skill = ticket.report.category.required_skill();
    let class = ticket.area_class;
    let candidate = |crew: u32| {
        let record = crews(crew).filter(|r| !ticket.declined_by.contains(&r.id))?;
        Some(Candidate {
            crew,
            eta_minutes: config
                .travel_minutes(record.position.haversine_km(ticket.report.location), class),
            own_station: record.station == ticket.station,
            record,
        })
    };

    // The nearest eligible crew in the projected plane, and every crew that could still beat
    // it on the exact great-circle estimate: the projection is within 1 % of great-circle
    // distances over a region (see `LocalProjection`), so 3 % of slack covers it and f32.
    let slack = |km: f64| km * 1.03 + 1e-3;
    let at = project(ticket.report.location);
    // Usually the nearest crew is eligible and one cheap query plus a small window does;
    // when it has declined this job, walk outwards lazily.
    let best = match pool.nearest_one(skill, at) {
        Some((crew, km)) if candidate(crew).is_some() => pool
            .within(skill, at, slack(km))
            .filter_map(candidate)
            .reduce(|a, b| if b.better_than(&a) { b } else { a })?,
        Some(_) => {
            let mut nearest = pool
                .nearest(skill, at)
                .filter_map(|(crew, km)| candidate(crew).map(|c| (c, km)));
            let (first, first_km) = nearest.next()?;
            nearest
                .take_while(|(_, km)| *km <= slack(first_km))
                .map(|(c, _)| c)
                .fold(first, |a, b| if b.better_than(&a) { b } else { a })
        }
        None => return None,
    };
    // The own station's best, by the same bound: exact estimates only for the few crews near
    // its nearest, which keeps a station with many crews cheap.
    let mut best_own: Option<Candidate> = None;
    if let Some(station) = station {
        let eligible = |(crew, km): (u32, f64)| {
            let declined = crews(crew).is_some_and(|r| ticket.declined_by.contains(&r.id));
            (!declined).then_some((crew, km))
        };
        let own = || pool.of_station(station, skill, at).filter_map(eligible);
        let nearest_own_km = own().map(|(_, km)| km).fold(f64::INFINITY, f64::min);
        for (crew, _) in own().filter(|(_, km)| *km <= slack(nearest_own_km)) {
            if let Some(c) = candidate(crew).filter(|c| c.own_station)
                && best_own.is_none_or(|b| c.better_than(&b))
            {
                best_own = Some(c);
            }
        }
    }
    // `best` is the nearest of all; when it is another station's crew beyond the reach, no
    // other station's crew is within it.
    let best = if best.own_station || best.eta_minutes <= config.borrow_reach(class) {
        Some(best)
    } else {
        None
    };
    let chosen = match (best, best_own) {
        (Some(best), Some(own))
            if own.eta_minutes > best.eta_minutes + config.own_station_margin_minutes =>
        {
            best
        }
        (_, Some(own)) => own,
        (Some(best), None) => best,
        (None, None) => return None,
    };
    Some(Choice {
        crew: chosen.crew,
        eta_minutes: chosen.eta_minutes,
    })
}

/// Picks the best crew of the ticket's own station (dense index `station`), by estimated
/// travel then crew id; `None` when none of them is free, skilled and willing.
pub fn choose_own_crew<'a>(
    config: &EngineConfig,
    pool: &CrewIndex,
    crews: impl Fn(u32) -> Option<&'a Crew>,
    project: impl Fn(LatLon) -> [f64; 2],
    ticket: &Ticket,
    station: Option<u32>,
) -> Option<Choice> {
    let skill = ticket.report.category.required_skill();
    let class = ticket.area_class;
    // A station has a handful of crews: exact estimates for all of them cost nothing.
    let best = pool
        .of_station(station?, skill, project(ticket.report.location))
        .filter_map(|(crew, _)| {
            let record = crews(crew)
                .filter(|r| r.station == ticket.station && !ticket.declined_by.contains(&r.id))?;
            Some(Candidate {
                crew,
                eta_minutes: config
                    .travel_minutes(record.position.haversine_km(ticket.report.location), class),
                own_station: true,
                record,
            })
        })
        .reduce(|a, b| if b.better_than(&a) { b } else { a })?;
    Some(Choice {
        crew: best.crew,
        eta_minutes: best.eta_minutes,
    })
}
