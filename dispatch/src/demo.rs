//! `dispatch demo`: the service with simulated 95598 agents and repair crews in the same
//! process, so a newcomer sees the whole system move within a minute of starting it.
//!
//! The simulation acts only as the service's own clients do: through the [`Dispatcher`]'s
//! public methods, as the agent (calls, callbacks, the odd cancellation) and as each crew
//! for itself (acknowledge or reject, depart, position pings along the way, arrive,
//! restore, return the work order, come on and go off duty). It never touches the engine.
//! Crews learn of their jobs from the live feed, as a crew app is pushed its job.
//!
//! Calls come at real places: a station is drawn by its customers (more customers, more
//! calls), the point near the station's own place and inside its service area. Now and then
//! a storm cell makes several calls about one outage within a few hundred metres, which the
//! service merges into one incident.
//!
//! Time runs [`DemoOptions::speedup`] times faster for everything simulated (how long a
//! crew takes to answer, drive, repair and write up the order; when the agent calls back)
//! and the SLA limits are divided by the same factor ([`compressed_sla`], at least
//! a minute each, the configuration's unit), so deadlines warn and breach at demo pace.
//! All randomness comes from one seeded PCG-64, so a seed gives the same kinds of traffic;
//! the exact interleaving still depends on timing.

use crate::config::Config;
use crate::domain::{
    AreaClass, Callback, Caller, CrewId, EventKind, FaultCategory, FaultClass, FaultReport, LatLon,
    LimitOverrides, Ownership, Priority, SlaPolicy, Ticket, TicketCommand, TicketId,
    WorkOrderReturn,
};
use crate::service::{Dispatcher, Principal, Received, ServiceArea, ServiceError};
use crate::{ServeError, open, serve};
use geo::{Area, Contains, Point};
use rand::RngExt;
use rand_distr::{Distribution, Exp, Normal};
use rand_pcg::Pcg64;
use rand_pcg::rand_core::{Rng, SeedableRng};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// Road distance over straight-line distance, as the engine assumes by default.
const CIRCUITY: f64 = 1.3;
/// A crew app reports its position this often while driving (real seconds).
const PING_SECONDS: f64 = 2.5;
/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.32;

/// How the demo drives traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Seeds every random choice.
    pub seed: u64,
    /// Calls per minute on average (a Poisson stream), storm cells aside.
    pub calls_per_minute: f64,
    /// Calls made in the first few seconds, so the map is not empty at first sight.
    pub warm_up_calls: usize,
    /// How many times faster than real life crews drive and repair, and deadlines run.
    pub speedup: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            calls_per_minute: 26.0,
            warm_up_calls: 12,
            speedup: 15.0,
        }
    }
}

/// The SLA limits divided by `speedup`, each at least one minute (the configuration's
/// unit); warning levels are fractions and stay as they are.
pub fn compressed_sla(policy: &SlaPolicy, speedup: f64) -> SlaPolicy {
    let speedup = speedup.max(1.0);
    let shrink = |minutes: u32| ((f64::from(minutes) / speedup).round() as u32).max(1);
    let shrink_some = |minutes: Option<u32>| minutes.map(shrink);
    let e = &policy.emergency;
    SlaPolicy {
        acknowledge: shrink(policy.acknowledge),
        arrive_urban: shrink(policy.arrive_urban),
        arrive_rural: shrink(policy.arrive_rural),
        arrive_remote: shrink(policy.arrive_remote),
        restore_urban: shrink(policy.restore_urban),
        restore_rural: shrink(policy.restore_rural),
        restore_remote: shrink(policy.restore_remote),
        return_order: shrink(policy.return_order),
        warn_at: policy.warn_at,
        warnings: policy.warnings,
        emergency: LimitOverrides {
            acknowledge: shrink_some(e.acknowledge),
            arrive_urban: shrink_some(e.arrive_urban),
            arrive_rural: shrink_some(e.arrive_rural),
            arrive_remote: shrink_some(e.arrive_remote),
            restore_urban: shrink_some(e.restore_urban),
            restore_rural: shrink_some(e.restore_rural),
            restore_remote: shrink_some(e.restore_remote),
            return_order: shrink_some(e.return_order),
        },
    }
}

/// Serves `config` with demo traffic until `shutdown` resolves, with the SLA limits
/// compressed by the demo's speedup. The simulation stops when the shutdown begins, before
/// the store closes.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: DemoOptions,
) -> Result<(), ServeError> {
    config.sla = compressed_sla(&config.sla, options.speedup);
    let dispatcher = open(&config).await?;
    let demo = tokio::spawn(drive(dispatcher.clone(), options));
    let stop_demo = demo.abort_handle();
    let shutdown = async move {
        shutdown.await;
        stop_demo.abort();
    };
    serve(dispatcher, &config.server, listener, shutdown).await
}

/// Drives simulated agents and crews against `dispatcher` until the live feed ends (the
/// service shuts down) or the task is aborted. Aborting it ends every simulated actor.
pub async fn drive(dispatcher: Arc<Dispatcher>, options: DemoOptions) {
    let world = match World::load(&dispatcher).await {
        Ok(world) => Arc::new(world),
        Err(error) => {
            tracing::error!(%error, "the demo cannot read the region: no simulated traffic");
            return;
        }
    };
    let mut demo = Demo {
        rng: Pcg64::seed_from_u64(options.seed),
        dispatcher,
        world,
        options,
        tasks: JoinSet::new(),
        crew_tasks: HashMap::new(),
        positions: HashMap::new(),
    };
    // Subscribe before looking at the crews, so no dispatch falls between the two.
    let mut feed = demo.dispatcher.subscribe();
    demo.resync().await;
    demo.send_some_off_duty().await;
    tracing::info!(
        calls_per_minute = demo.options.calls_per_minute,
        speedup = demo.options.speedup,
        seed = demo.options.seed,
        "demo traffic started"
    );

    let mut warm_up = demo.options.warm_up_calls;
    let mut next_call = Instant::now() + Duration::from_millis(300);
    let mut next_shift = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::select! {
            received = feed.next() => match received {
                Some(Received::Event(live)) => {
                    demo.on_event(&live.event.kind, live.ticket.as_ref(), live.crew.as_ref());
                }
                Some(Received::Missed(count)) => {
                    tracing::warn!(count, "the demo fell behind the live feed: resynchronising");
                    demo.resync().await;
                }
                None => break,
            },
            () = tokio::time::sleep_until(next_call) => {
                let storm = warm_up == 0 && demo.rng.random_bool(0.07);
                if storm {
                    demo.start_storm();
                } else {
                    demo.start_call();
                }
                next_call = Instant::now() + if warm_up > 0 {
                    warm_up -= 1;
                    Duration::from_millis(demo.rng.random_range(300..900))
                } else {
                    demo.next_call_gap()
                };
            },
            () = tokio::time::sleep_until(next_shift) => {
                demo.shift_change().await;
                next_shift = Instant::now() + life(&mut demo.rng, 5.0..10.0, demo.options.speedup);
            },
            Some(_) = demo.tasks.join_next(), if !demo.tasks.is_empty() => {}
        }
    }
    tracing::info!("demo traffic stopped");
}

/// The region as the simulated callers know it.
#[derive(Debug)]
struct World {
    places: Vec<Place>,
    /// Sum of the places' customers: the weight a call is drawn with.
    customers: u64,
    /// Where each crew goes back to when it is free: where it started.
    homes: HashMap<CrewId, LatLon>,
}

/// A station's place and service area, where its customers call from.
#[derive(Debug)]
struct Place {
    name: String,
    district: String,
    centre: LatLon,
    area: geo::MultiPolygon<f64>,
    /// How far calls spread around the centre (one standard deviation), km.
    spread_km: f64,
    customers: u64,
}

impl World {
    async fn load(dispatcher: &Dispatcher) -> Result<Self, ServiceError> {
        let areas = dispatcher.service_areas().await?;
        let places: Vec<Place> = areas.into_iter().map(Place::from).collect();
        let customers = places.iter().map(|p| p.customers.max(1)).sum();
        let homes = dispatcher
            .crews()
            .await?
            .into_iter()
            .map(|c| (c.id, c.position))
            .collect();
        Ok(Self {
            places,
            customers,
            homes,
        })
    }

    /// A place drawn by its customers.
    fn place(&self, rng: &mut Pcg64) -> Option<&Place> {
        let mut pick = rng.random_range(0..self.customers.max(1));
        for place in &self.places {
            let weight = place.customers.max(1);
            if pick < weight {
                return Some(place);
            }
            pick -= weight;
        }
        self.places.last()
    }
}

impl From<ServiceArea> for Place {
    fn from(area: ServiceArea) -> Self {
        let centre = area.station.location;
        let km2 = area.area.unsigned_area()
            * KM_PER_DEGREE
            * KM_PER_DEGREE
            * centre.lat().to_radians().cos();
        Self {
            name: area
                .station
                .name
                .trim_end_matches("供电所")
                .trim()
                .to_owned(),
            district: area.station.district,
            centre,
            // Customers crowd around the town: a third of the area's width covers most.
            spread_km: (km2.sqrt() / 3.0).clamp(0.3, 6.0),
            area: area.area,
            customers: area.station.customers,
        }
    }
}

/// Moves `from` by `(north_km, east_km)`.
fn offset(from: LatLon, north_km: f64, east_km: f64) -> Option<LatLon> {
    let lat = from.lat() + north_km / KM_PER_DEGREE;
    let lon = from.lon() + east_km / (KM_PER_DEGREE * from.lat().to_radians().cos().max(0.01));
    LatLon::new(lat, lon).ok()
}

/// A point `spread_km` around `centre` (normally distributed) inside `area`; the centre
/// itself if a few draws all fall outside.
fn point_near(
    rng: &mut Pcg64,
    centre: LatLon,
    spread_km: f64,
    area: &geo::MultiPolygon<f64>,
) -> LatLon {
    let Ok(normal) = Normal::new(0.0, spread_km) else {
        return centre;
    };
    for _ in 0..20 {
        let (north, east) = (normal.sample(rng), normal.sample(rng));
        if let Some(p) = offset(centre, north, east)
            && area.contains(&Point::new(p.lon(), p.lat()))
        {
            return p;
        }
    }
    centre
}

fn lerp(from: LatLon, to: LatLon, f: f64) -> LatLon {
    LatLon::new(
        from.lat() + (to.lat() - from.lat()) * f,
        from.lon() + (to.lon() - from.lon()) * f,
    )
    .unwrap_or(to)
}

fn pick<'a, T>(rng: &mut Pcg64, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// A wait drawn from `minutes` of real life, at the demo's speed.
fn life(rng: &mut Pcg64, minutes: std::ops::Range<f64>, speedup: f64) -> Duration {
    seconds(rng.random_range(minutes) * 60.0 / speedup.max(1.0))
}

/// The simulation's state, owned by its one loop.
struct Demo {
    rng: Pcg64,
    dispatcher: Arc<Dispatcher>,
    world: Arc<World>,
    options: DemoOptions,
    /// Every simulated actor's task: aborted with the demo.
    tasks: JoinSet<()>,
    /// The task now acting for each crew; a new job or a lost one replaces it.
    crew_tasks: HashMap<CrewId, AbortHandle>,
    /// Each crew's last reported position, from the feed.
    positions: HashMap<CrewId, LatLon>,
}

impl Demo {
    fn seed(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn next_call_gap(&mut self) -> Duration {
        let per_second = (self.options.calls_per_minute / 60.0).max(1e-3);
        Exp::new(per_second)
            .map(|exp| seconds(exp.sample(&mut self.rng).min(60.0)))
            .unwrap_or(Duration::from_secs(3))
    }

    fn position_of(&self, crew: &CrewId) -> Option<LatLon> {
        self.positions
            .get(crew)
            .or_else(|| self.world.homes.get(crew))
            .copied()
    }

    /// Starts `task` as what `crew` now does, ending whatever it did before.
    fn act_for(&mut self, crew: &CrewId, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(old) = self.crew_tasks.remove(crew) {
            old.abort();
        }
        let handle = self.tasks.spawn(task);
        self.crew_tasks.insert(crew.clone(), handle);
    }

    fn on_event(
        &mut self,
        kind: &EventKind,
        ticket: Option<&Ticket>,
        crew: Option<&crate::domain::Crew>,
    ) {
        if let Some(crew) = crew {
            self.positions.insert(crew.id.clone(), crew.position);
        }
        match kind {
            EventKind::Dispatched { crew, .. } => {
                if let Some(ticket) = ticket {
                    self.start_job(crew, ticket);
                }
            }
            EventKind::Declined {
                crew,
                reason: crate::domain::DeclineReason::AcknowledgeTimeout,
                ..
            } => {
                // The crew missed the push; it notices a while later, reports in (which
                // puts it back in the pool) and heads home.
                let wake = life(&mut self.rng, 4.0..11.0, self.options.speedup);
                self.head_home(crew, wake);
            }
            EventKind::Cancelled {
                crew: Some(crew), ..
            } => self.head_home(crew, Duration::ZERO),
            EventKind::Returned { ticket, .. } => self.start_callback(ticket),
            _ => {}
        }
    }

    /// Crews that hold a job get a task for it: at start, or after missing events.
    async fn resync(&mut self) {
        let crews = match self.dispatcher.crews().await {
            Ok(crews) => crews,
            Err(error) => {
                tracing::warn!(%error, "the demo cannot list crews");
                return;
            }
        };
        for crew in crews {
            self.positions.insert(crew.id.clone(), crew.position);
            let Some(job) = crew.job().cloned() else {
                continue;
            };
            let me = Principal::Crew(crew.id.clone());
            if let Ok(jobs) = self.dispatcher.crew_jobs(&me, &crew.id).await
                && let Some(ticket) = jobs.into_iter().find(|t| t.id == job)
            {
                self.start_job(&crew.id, &ticket);
            }
        }
    }

    fn start_job(&mut self, crew: &CrewId, ticket: &Ticket) {
        let Some(from) = self.position_of(crew) else {
            return;
        };
        let job = Job {
            dispatcher: self.dispatcher.clone(),
            crew: crew.clone(),
            ticket: ticket.id.clone(),
            state: ticket.state,
            site: ticket.report.location,
            category: ticket.report.category,
            area_class: ticket.area_class,
            from,
            home: self.world.homes.get(crew).copied().unwrap_or(from),
            speedup: self.options.speedup,
            rng: Pcg64::seed_from_u64(self.seed()),
        };
        self.act_for(crew, job.work());
    }

    /// The crew drives back to where it started, after `delay`; its first ping also brings
    /// an unresponsive crew back into the pool.
    fn head_home(&mut self, crew: &CrewId, delay: Duration) {
        let (Some(from), Some(home)) =
            (self.position_of(crew), self.world.homes.get(crew).copied())
        else {
            return;
        };
        let dispatcher = self.dispatcher.clone();
        let id = crew.clone();
        let speedup = self.options.speedup;
        self.act_for(crew, async move {
            tokio::time::sleep(delay).await;
            let me = Principal::Crew(id.clone());
            let _ = dispatcher.crew_position(&me, &id, from, None).await;
            drive_to(&dispatcher, &id, from, home, 30.0 * speedup).await;
        });
    }

    fn start_call(&mut self) {
        let world = self.world.clone();
        let Some(place) = world.place(&mut self.rng) else {
            return;
        };
        let at = point_near(&mut self.rng, place.centre, place.spread_km, &place.area);
        let category = call_category(&mut self.rng);
        let report = self.report(place, at, category);
        let cancel_after = self
            .rng
            .random_bool(0.03)
            .then(|| life(&mut self.rng, 2.5..10.0, self.options.speedup));
        let dispatcher = self.dispatcher.clone();
        self.tasks.spawn(async move {
            call(&dispatcher, report, cancel_after).await;
        });
    }

    /// Several callers about one outage within a few hundred metres, over half a minute:
    /// the service should dispatch one crew and merge the rest.
    fn start_storm(&mut self) {
        let world = self.world.clone();
        let Some(place) = world.place(&mut self.rng) else {
            return;
        };
        let centre = point_near(&mut self.rng, place.centre, place.spread_km, &place.area);
        let callers = self.rng.random_range(3..8);
        let mut calls = Vec::with_capacity(callers);
        for i in 0..callers {
            let at = point_near(&mut self.rng, centre, 0.08, &place.area);
            let category = if i == 0 && self.rng.random_bool(0.3) {
                FaultCategory::LineDown
            } else if self.rng.random_bool(0.6) {
                FaultCategory::AreaOutage
            } else {
                FaultCategory::NoPower
            };
            let gap = life(&mut self.rng, 0.5..2.25, self.options.speedup);
            calls.push((gap, self.report(place, at, category)));
        }
        tracing::info!(place = %place.name, callers, "demo: a storm cell");
        let dispatcher = self.dispatcher.clone();
        self.tasks.spawn(async move {
            for (gap, report) in calls {
                tokio::time::sleep(gap).await;
                call(&dispatcher, report, None).await;
            }
        });
    }

    fn report(&mut self, place: &Place, at: LatLon, category: FaultCategory) -> FaultReport {
        const SURNAMES: [&str; 16] = [
            "陈", "李", "黄", "张", "梁", "林", "刘", "叶", "钟", "罗", "何", "曾", "邓", "吴",
            "王", "周",
        ];
        const GIVEN: [&str; 16] = [
            "伟", "芳", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "华",
            "秀英", "志强",
        ];
        const STREETS: [&str; 14] = [
            "人民路",
            "中山路",
            "建设路",
            "新华路",
            "解放路",
            "环城路",
            "东湖路",
            "工业大道",
            "商业街",
            "新村",
            "花园",
            "村委会旁",
            "市场街",
            "滨江路",
        ];
        let phone = format!(
            "1{}{:09}",
            pick(&mut self.rng, &["3", "5", "8", "9"]),
            self.rng.random_range(0..1_000_000_000u64)
        );
        let name = format!(
            "{}{}",
            pick(&mut self.rng, &SURNAMES),
            pick(&mut self.rng, &GIVEN)
        );
        let address = format!(
            "{} {}{} {}号",
            place.district,
            place.name,
            pick(&mut self.rng, &STREETS),
            self.rng.random_range(1..300)
        );
        let priority = if self.rng.random_bool(0.04) {
            Priority::Emergency
        } else {
            Priority::Normal
        };
        FaultReport {
            caller: Caller { name, phone },
            location: at,
            address,
            category,
            priority,
            important_customer: self.rng.random_bool(0.03),
            description: (*pick(&mut self.rng, description_of(category))).to_owned(),
        }
    }

    /// After the work order is returned, the agent calls the customer back (回访) and closes.
    fn start_callback(&mut self, ticket: &TicketId) {
        let delay = life(&mut self.rng, 1.25..6.25, self.options.speedup);
        let satisfied = self.rng.random_bool(0.92);
        let dispatcher = self.dispatcher.clone();
        let ticket = ticket.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let callback = Callback {
                satisfied,
                note: Some(if satisfied { "满意" } else { "到达太慢" }.to_owned()),
            };
            step(
                &dispatcher,
                &Principal::Agent,
                &ticket,
                TicketCommand::Close(callback),
            )
            .await;
        });
    }

    /// At the start a few crews are off shift.
    async fn send_some_off_duty(&mut self) {
        let mut crews: Vec<CrewId> = self.world.homes.keys().cloned().collect();
        crews.sort();
        for crew in crews {
            if self.rng.random_bool(0.08) {
                let me = Principal::Crew(crew.clone());
                let _ = self.dispatcher.crew_duty(&me, &crew, false).await;
            }
        }
    }

    /// A crew off shift comes back, and a free one goes off.
    async fn shift_change(&mut self) {
        let Ok(crews) = self.dispatcher.crews().await else {
            return;
        };
        let off: Vec<&crate::domain::Crew> = crews
            .iter()
            .filter(|c| c.status == crate::domain::CrewStatus::OffDuty)
            .collect();
        let free: Vec<&crate::domain::Crew> = crews.iter().filter(|c| c.is_available()).collect();
        if !off.is_empty() {
            let crew = &pick(&mut self.rng, &off).id;
            let _ = self
                .dispatcher
                .crew_duty(&Principal::Crew(crew.clone()), crew, true)
                .await;
        }
        if !free.is_empty() {
            let crew = pick(&mut self.rng, &free).id.clone();
            if let Some(task) = self.crew_tasks.remove(&crew) {
                task.abort();
            }
            let _ = self
                .dispatcher
                .crew_duty(&Principal::Crew(crew.clone()), &crew, false)
                .await;
        }
    }
}

/// A category as calls come in on an ordinary day: mostly single customers without power.
fn call_category(rng: &mut Pcg64) -> FaultCategory {
    let roll = rng.random_range(0..100);
    match roll {
        0..55 => FaultCategory::NoPower,
        55..68 => FaultCategory::AreaOutage,
        68..73 => FaultCategory::LineDown,
        73..74 => FaultCategory::EquipmentFire,
        74..82 => FaultCategory::VoltageQuality,
        82..89 => FaultCategory::Meter,
        89..96 => FaultCategory::CustomerInternal,
        _ => FaultCategory::Other,
    }
}

fn description_of(category: FaultCategory) -> &'static [&'static str] {
    match category {
        FaultCategory::NoPower => &["家里停电了", "整栋楼没电", "家中无电，邻居有电"],
        FaultCategory::AreaOutage => &["整个小区停电", "一片都停电了", "整条街停电"],
        FaultCategory::LineDown => &["电线被风吹断落地", "有电线掉在路上"],
        FaultCategory::EquipmentFire => &["变压器冒烟", "电杆上有火花"],
        FaultCategory::VoltageQuality => &["灯光忽明忽暗", "电压太低，空调开不了"],
        FaultCategory::Meter => &["电表不走字", "电表显示异常"],
        FaultCategory::CustomerInternal => &["家里空开跳闸合不上", "插座没电"],
        FaultCategory::Other => &["电杆倾斜", "表箱门坏了"],
    }
}

/// What a crew finds and writes on the work order, by the symptom called in.
fn finding(category: FaultCategory) -> (FaultClass, Ownership, &'static str, &'static str) {
    match category {
        FaultCategory::NoPower => (
            FaultClass::LowVoltage,
            Ownership::Utility,
            "低压熔断器熔断",
            "更换熔断器",
        ),
        FaultCategory::AreaOutage | FaultCategory::LineDown => (
            FaultClass::HighVoltage,
            Ownership::Utility,
            "10kV线路树枝搭线跳闸",
            "清除树障，试送成功",
        ),
        FaultCategory::EquipmentFire => (
            FaultClass::HighVoltage,
            Ownership::Utility,
            "配变低压桩头烧损",
            "更换桩头线夹",
        ),
        FaultCategory::VoltageQuality => (
            FaultClass::PowerQuality,
            Ownership::Utility,
            "台区三相负荷不平衡",
            "调整负荷分配",
        ),
        FaultCategory::Meter => (
            FaultClass::Metering,
            Ownership::Utility,
            "电能表故障",
            "更换电能表",
        ),
        FaultCategory::CustomerInternal => (
            FaultClass::CustomerInternal,
            Ownership::Customer,
            "户内空开故障",
            "告知客户自行更换",
        ),
        FaultCategory::Other => (
            FaultClass::NonElectrical,
            Ownership::Utility,
            "电杆倾斜",
            "扶正加固",
        ),
    }
}

/// Minutes of repair on site, by the symptom.
fn repair_minutes(category: FaultCategory) -> (f64, f64) {
    match category {
        FaultCategory::NoPower => (20.0, 70.0),
        FaultCategory::AreaOutage => (50.0, 150.0),
        FaultCategory::LineDown => (60.0, 170.0),
        FaultCategory::EquipmentFire => (90.0, 200.0),
        FaultCategory::VoltageQuality => (30.0, 90.0),
        FaultCategory::Meter => (15.0, 40.0),
        FaultCategory::CustomerInternal => (15.0, 45.0),
        FaultCategory::Other => (20.0, 60.0),
    }
}

/// Driving speed by the area class of the job, km/h (before the demo's speedup).
fn speed_kmh(class: AreaClass) -> f64 {
    match class {
        AreaClass::Urban => 25.0,
        AreaClass::Rural => 40.0,
        AreaClass::Remote => 30.0,
    }
}

/// The agent makes a call; a few callers ring back to cancel (they found their own breaker).
async fn call(dispatcher: &Dispatcher, report: FaultReport, cancel_after: Option<Duration>) {
    match dispatcher
        .create_ticket(&Principal::Agent, report, None)
        .await
    {
        Ok(created) => {
            if let Some(wait) = cancel_after {
                tokio::time::sleep(wait).await;
                let cancel = TicketCommand::Cancel {
                    reason: "客户自行恢复送电".into(),
                    with_repeats: false,
                };
                step(dispatcher, &Principal::Agent, &created.ticket.id, cancel).await;
            }
        }
        Err(error) => tracing::debug!(%error, "demo: a call was refused"),
    }
}

/// One step as `who`; a refusal (the job was taken away meanwhile) is the simulation's
/// normal life, not an error of the service.
async fn step(
    dispatcher: &Dispatcher,
    who: &Principal,
    ticket: &TicketId,
    command: TicketCommand,
) -> bool {
    let name = command.name();
    match dispatcher.ticket_step(who, ticket, command).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(ticket.id = %ticket, step = name, %error, "demo: a step was refused");
            false
        }
    }
}

/// Drives from `from` to `to` at `kmh` (already sped up), reporting positions on the way.
async fn drive_to(dispatcher: &Dispatcher, crew: &CrewId, from: LatLon, to: LatLon, kmh: f64) {
    let me = Principal::Crew(crew.clone());
    let km = from.haversine_km(to) * CIRCUITY;
    let total = km / kmh.max(1.0) * 3600.0;
    let pings = (total / PING_SECONDS).ceil().max(1.0);
    for i in 1..=(pings as u32) {
        tokio::time::sleep(seconds(total / pings)).await;
        let at = lerp(from, to, f64::from(i) / pings);
        if let Err(error) = dispatcher.crew_position(&me, crew, at, None).await {
            tracing::debug!(crew.id = %crew, %error, "demo: a position was refused");
            return;
        }
    }
}

/// One crew's job, from the push to the way home.
struct Job {
    dispatcher: Arc<Dispatcher>,
    crew: CrewId,
    ticket: TicketId,
    /// Where the job stands when the task starts (dispatched, unless resynchronising).
    state: crate::domain::TicketState,
    site: LatLon,
    category: FaultCategory,
    area_class: AreaClass,
    from: LatLon,
    home: LatLon,
    speedup: f64,
    rng: Pcg64,
}

impl Job {
    async fn work(mut self) {
        use crate::domain::TicketState as S;
        let me = Principal::Crew(self.crew.clone());
        let d = self.dispatcher.clone();
        let kmh = speed_kmh(self.area_class) * self.speedup;
        let mut at = self.from;
        if self.state == S::Dispatched {
            let roll = self.rng.random_range(0..100);
            if roll < 4 {
                // The phone is in a pocket: the acknowledgement deadline will take the job.
                return;
            }
            // Most acknowledge within minutes; some are slow enough to be warned.
            let minutes = if roll < 85 { 0.75..5.0 } else { 6.0..12.5 };
            tokio::time::sleep(life(&mut self.rng, minutes, self.speedup)).await;
            if roll < 8 {
                let reject = TicketCommand::Reject {
                    reason: "车辆故障".into(),
                };
                step(&d, &me, &self.ticket, reject).await;
                return;
            }
            if !step(&d, &me, &self.ticket, TicketCommand::Acknowledge).await {
                return;
            }
            self.state = S::Acknowledged;
        }
        if self.state == S::Acknowledged {
            tokio::time::sleep(life(&mut self.rng, 0.5..2.0, self.speedup)).await;
            if !step(&d, &me, &self.ticket, TicketCommand::Depart).await {
                return;
            }
            self.state = S::EnRoute;
        }
        if self.state == S::EnRoute {
            drive_to(&d, &self.crew, at, self.site, kmh).await;
            at = self.site;
            let arrive = TicketCommand::Arrive {
                location: Some(self.site),
            };
            if !step(&d, &me, &self.ticket, arrive).await {
                return;
            }
            self.state = S::OnSite;
        }
        let (fault_class, ownership, cause, resolution) = finding(self.category);
        if self.state == S::OnSite {
            let (low, high) = repair_minutes(self.category);
            tokio::time::sleep(life(&mut self.rng, low..high, self.speedup)).await;
            let restore = TicketCommand::Restore {
                cause: Some(cause.to_owned()),
            };
            if !step(&d, &me, &self.ticket, restore).await {
                return;
            }
            self.state = S::Restored;
        }
        if self.state == S::Restored {
            // Writing up the order; now and then it waits until the crew is back in the van.
            let minutes = if self.rng.random_bool(0.9) {
                2.0..12.5
            } else {
                17.5..37.5
            };
            tokio::time::sleep(life(&mut self.rng, minutes, self.speedup)).await;
            let order = TicketCommand::Return(WorkOrderReturn {
                fault_class,
                cause: cause.to_owned(),
                ownership,
                resolution: Some(resolution.to_owned()),
                outage_cause: crate::domain::OutageCause::Fault,
            });
            if !step(&d, &me, &self.ticket, order).await {
                return;
            }
        }
        drive_to(&d, &self.crew, at, self.home, kmh).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn compressed_limits_keep_a_minute_at_least() {
        let policy = compressed_sla(&SlaPolicy::default(), 15.0);
        // 5 / 15 rounds to 0: kept at the configuration's unit.
        assert_eq!(policy.acknowledge, 1);
        assert_eq!(policy.arrive_urban, 3);
        assert_eq!(policy.arrive_rural, 6);
        assert_eq!(policy.arrive_remote, 8);
        assert_eq!(policy.restore_urban, 12);
        assert_eq!(policy.return_order, 2);
        assert_eq!(policy.warn_at, SlaPolicy::default().warn_at);
        assert!(policy.validate().is_ok());
        // No speedup, no change.
        assert_eq!(
            compressed_sla(&SlaPolicy::default(), 1.0),
            SlaPolicy::default()
        );
    }

    #[test]
    fn call_points_stay_in_the_area_and_near_the_centre() {
        let square = polygon![
            (x: 114.0, y: 23.0), (x: 114.1, y: 23.0), (x: 114.1, y: 23.1), (x: 114.0, y: 23.1)
        ];
        let area = geo::MultiPolygon(vec![square]);
        let centre = LatLon::new(23.05, 114.05).unwrap();
        let mut rng = Pcg64::seed_from_u64(7);
        for _ in 0..200 {
            let p = point_near(&mut rng, centre, 2.0, &area);
            assert!(area.contains(&Point::new(p.lon(), p.lat())), "{p:?}");
            assert!(p.haversine_km(centre) < 8.0, "{p:?}");
        }
    }

    #[test]
    fn categories_follow_the_day_mix() {
        let mut rng = Pcg64::seed_from_u64(3);
        let n = 10_000;
        let no_power = (0..n)
            .filter(|_| call_category(&mut rng) == FaultCategory::NoPower)
            .count();
        // 55 % by construction; 10,000 draws put it within a couple of points.
        assert!((5_200..5_800).contains(&no_power), "{no_power}");
    }
}
