//! The simulator's promises: the same seed gives the same report, every report is accounted
//! for at the end, and no ticket is reached sooner than its lower bound.

use super::*;
use crate::domain::TicketState;
use crate::engine::synthetic;

/// A day shrunk to eight hours on a 4 × 4 grid: a base rate, a squall crossing the grid,
/// repeat calls, two shifts, and crews that often miss a dispatch, so that timeouts,
/// re-dispatches, shift changes and a queue all happen.
const SQUALL: &str = r#"
    name = "squall"
    hours = 8
    seed = 11
    [calls]
    base_per_day = 600
    mix = { no_power = 5, area_outage = 2, line_down = 1, meter = 2, customer_internal = 1 }
    repeat_share = 0.1
    emergency_share = 0.05
    important_share = 0.05
    [[surge]]
    name = "squall"
    start_hour = 2
    peak_hour = 3
    peak_per_hour = 150
    decay_hours = 1.5
    repeat_share = 0.5
    track = [[22.52, 113.82, 2.0], [22.65, 113.95, 6.0]]
    radius_km = 6
    floor = 0.1
    mix = { area_outage = 2, line_down = 1, no_power = 2 }
    repair_factor = 1.5
    [crews]
    ack_miss = 0.2
    ack_minutes = { min = 0.5, max = 3 }
    ready_minutes = { min = 1, max = 4 }
    order_minutes = { min = 3, max = 10 }
    back_in_touch_minutes = { min = 5, max = 20 }
    return_to_station = true
    [[crews.shift]]
    start_hour = 6
    hours = 12
    share = 0.5
    [[crews.shift]]
    start_hour = 18
    hours = 12
    share = 0.5
    [repair]
    default = { median = 40, sigma = 0.5 }
    [repair.by_category]
    line_down = { median = 90, sigma = 0.6 }
"#;

fn squall(seed: Option<u64>) -> Simulation {
    let scenario = Scenario::from_toml(SQUALL).expect("the test scenario reads");
    Simulation::new(scenario, synthetic::grid(4, 4, 5.0, 24, 2), seed)
}

#[test]
fn the_same_seed_gives_the_same_report_and_another_seed_another() {
    let a = squall(None);
    let b = squall(Some(11));
    for policy in Dispatch::ALL {
        let (ra, rb) = (a.run(policy).unwrap(), b.run(policy).unwrap());
        assert_eq!(ra, rb, "{policy}");
        assert_eq!(PolicyReport::of(&ra), PolicyReport::of(&rb));
    }
    assert_eq!(
        a.markdown(&[a.run(Dispatch::Policy(DispatchPolicy::Batch)).unwrap()]),
        b.markdown(&[b.run(Dispatch::Policy(DispatchPolicy::Batch)).unwrap()])
    );
    let c = squall(Some(12));
    assert_ne!(
        PolicyReport::of(&c.run(Dispatch::Policy(DispatchPolicy::Nearest)).unwrap()),
        PolicyReport::of(&a.run(Dispatch::Policy(DispatchPolicy::Nearest)).unwrap())
    );
}

#[test]
fn every_report_ends_merged_returned_or_open_and_none_is_lost() {
    let sim = squall(None);
    for policy in Dispatch::ALL {
        let outcome = sim.run(policy).unwrap();
        let report = PolicyReport::of(&outcome);
        assert_eq!(
            outcome.refused_steps, 0,
            "{policy}: the engine refused a crew's step"
        );
        assert_eq!(
            outcome.calls,
            outcome.reported + outcome.refused,
            "{policy}"
        );
        assert_eq!(
            outcome.tickets.len(),
            outcome.reported,
            "{policy}: a ticket was lost"
        );
        let ends = report.ends;
        assert_eq!(ends.other, 0, "{policy}");
        assert_eq!(
            ends.merged + ends.returned + ends.open,
            outcome.reported,
            "{policy}"
        );
        // The scenario is busy enough for each kind of end to happen.
        assert!(
            ends.merged > 0 && ends.returned > 0 && ends.open > 0,
            "{policy}: {ends:?}"
        );
        for t in &outcome.tickets {
            assert!(
                matches!(t.state, TicketState::Merged | TicketState::Returned)
                    || !t.state.is_final(),
                "{policy}: {} ended {}",
                t.id,
                t.state
            );
        }
    }
}

#[test]
fn no_ticket_is_reached_sooner_than_its_lower_bound() {
    let sim = squall(None);
    for policy in Dispatch::ALL {
        let outcome = sim.run(policy).unwrap();
        let mut arrived = 0;
        for t in &outcome.tickets {
            if let Some(at) = t.arrived_at {
                arrived += 1;
                let bound = t
                    .bound_minutes
                    .expect("a crew got there, so one has the skill");
                // Times are kept to the millisecond: allow for that rounding.
                assert!(
                    at.minutes_since(t.reported_at) >= bound - 1e-4,
                    "{policy}: {} arrived after {} min, bound {bound}",
                    t.id,
                    at.minutes_since(t.reported_at)
                );
            }
        }
        assert!(arrived > 50, "{policy}: only {arrived} arrivals");
        let r = PolicyReport::of(&outcome);
        assert!(r.in_time.all.met <= r.bound_in_time.all.met);
        assert!(r.mean_arrival >= r.bound_mean_arrival);
        assert!(r.p90_arrival >= r.bound_p90_arrival);
        assert!(r.mean_restoration >= r.bound_mean_restoration);
        assert!(r.customer_minutes >= r.bound_customer_minutes);
    }
}

#[test]
fn storm_mode_switches_on_in_the_squall_and_batches_its_queue() {
    // A lighter day and crews of every skill: the squall's queue builds up and drains.
    let mut scenario = Scenario::from_toml(SQUALL).unwrap();
    scenario.calls.base_per_day = 100.0;
    scenario.surges[0].peak_per_hour = 60.0;
    scenario.engine.storm.enter_queue = Some(6);
    scenario.engine.storm.leave_queue = 1;
    scenario.crews.shifts = vec![scenario::Shift {
        start_hour: 0.0,
        hours: 24.0,
        share: 1.0,
    }];
    let mut region = synthetic::grid(4, 4, 5.0, 24, 2);
    for crew in &mut region.crews {
        crew.skills = crate::domain::SkillSet::ALL_SKILLS.into_iter().collect();
    }
    let sim = Simulation::new(scenario, region, None);
    let outcome = sim.run(Dispatch::NearestWithStormMode).unwrap();
    let peak = outcome.samples.iter().map(|s| s.queued).max().unwrap_or(0);
    assert!(peak >= 6, "the queue peaked at {peak}");
    // On when the queue passed 6, off once an assignment left at most one waiting.
    assert!(
        outcome.storm_switches >= 2,
        "{} switches",
        outcome.storm_switches
    );
    assert_eq!(outcome.refused_steps, 0);
    let report = PolicyReport::of(&outcome);
    assert_eq!(report.ends.other, 0);
    // The plain policy never switches, whatever the scenario's threshold.
    let plain = sim.run(Dispatch::Policy(DispatchPolicy::Nearest)).unwrap();
    assert_eq!(plain.storm_switches, 0);
}

#[test]
fn the_bundled_scenarios_read() {
    for text in [
        include_str!("../../scenarios/huizhou/normal-day.toml"),
        include_str!("../../scenarios/huizhou/typhoon.toml"),
    ] {
        let scenario = Scenario::from_toml(text).unwrap();
        assert!(scenario.hours >= 24.0, "{}: a full day", scenario.name);
    }
}

#[test]
fn charts_and_the_table_come_out_of_runs() {
    charts::tests_support::load_test_font();
    let sim = squall(None);
    let outcomes: Vec<RunOutcome> = Dispatch::ALL
        .into_iter()
        .map(|p| sim.run(p).unwrap())
        .collect();
    let table = sim.markdown(&outcomes);
    for policy in Dispatch::ALL {
        assert!(table.contains(&format!("| {policy} |")), "{table}");
    }
    for png in [
        charts::compliance("squall", &outcomes).unwrap(),
        charts::queue("squall", &outcomes).unwrap(),
    ] {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
