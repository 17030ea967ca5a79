//! Choosing the crew for a ticket: the rule, as a function of the pool and the ticket only.

use super::config::EngineConfig;
use crate::domain::{Crew, LatLon, Ticket};
use crate::geo::CrewIndex;

/// The chosen crew (its dense index) and its estimated travel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub crew: u32,
    pub eta_minutes: f64,
}

/// One crew considered for a ticket.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    crew: u32,
    eta_minutes: f64,
    own_station: bool,
    record: &'a Crew,
}

/// Picks the crew for `ticket` among the available crews of `pool`:
/// the shortest estimated travel among crews with the required skill that have not declined
/// this job, except that the best crew of the ticket's own station is preferred unless the
/// other arrives more than the configured margin sooner. Ties go to the own station, then
/// the lower crew id, so the choice never depends on tree order.
pub fn choose_crew<'a>(
    config: &EngineConfig,
    pool: &CrewIndex,
    crews: impl Fn(u32) -> Option<&'a Crew>,
    project: impl Fn(LatLon) -> [f64; 2],
    ticket: &Ticket,
) -> Option<Choice> {
    let skill = ticket.report.category.required_skill();
    let class = ticket.area_class;
    let at = project(ticket.report.location);
    let eligible =
        |crew: u32| crews(crew).filter(|record| !ticket.declined_by.contains(&record.id));
    let mut nearest = pool.nearest(skill, at);
    // The first eligible crew in projected distance bounds the search: a crew farther than it
    // plus the own-station margin can win neither rule. The projection is within 1 % of the
    // great-circle distance over a region (see `LocalProjection`), hence the 3 % slack.
    let (first, first_km) = nearest.find(|(crew, _)| eligible(*crew).is_some())?;
    let margin_km = config.reach_km(config.own_station_margin_minutes, class);
    let bound_km = (first_km + margin_km) * 1.03 + 1e-6;
    let candidates = std::iter::once((first, first_km))
        .chain(nearest.take_while(|(_, km)| *km <= bound_km))
        .filter_map(|(crew, _)| {
            let record = eligible(crew)?;
            Some(Candidate {
                crew,
                eta_minutes: config
                    .travel_minutes(record.position.haversine_km(ticket.report.location), class),
                own_station: record.station == ticket.station,
                record,
            })
        });
    let better = |a: &Candidate, b: &Candidate| {
        a.eta_minutes
            .total_cmp(&b.eta_minutes)
            .then(b.own_station.cmp(&a.own_station))
            .then(a.record.id.cmp(&b.record.id))
    };
    let mut best: Option<Candidate> = None;
    let mut best_own: Option<Candidate> = None;
    for candidate in candidates {
        if best.is_none_or(|b| better(&candidate, &b).is_lt()) {
            best = Some(candidate);
        }
        if candidate.own_station && best_own.is_none_or(|b| better(&candidate, &b).is_lt()) {
            best_own = Some(candidate);
        }
    }
    let best = best?;
    let chosen = match best_own {
        Some(own) if own.eta_minutes <= best.eta_minutes + config.own_station_margin_minutes => own,
        _ => best,
    };
    Some(Choice {
        crew: chosen.crew,
        eta_minutes: chosen.eta_minutes,
    })
}
