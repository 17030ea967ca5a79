//! CPU time spent by the server processes during a measurement, and their memory, from
//! `/proc`. Throughput on a shared two-core machine swings with whatever else runs; the CPU
//! the servers spent per request moves much less, so it is the steadier figure for
//! comparing two builds.

use anyhow::Context;
use procfs::process::Process;

/// Resident memory of `pids` now, summed, in MiB: what the open tickets a measurement
/// leaves behind cost the servers.
pub fn resident_mib(pids: &[u32]) -> anyhow::Result<f64> {
    let page = procfs::page_size() as f64;
    sum_over(pids, "statm", |process| {
        Ok(process.statm()?.resident as f64 * page / (1024.0 * 1024.0))
    })
}

/// CPU seconds (user + system, all threads, and children waited for) used so far by each of
/// `pids`, summed. Children count because Redis forks one for every AOF rewrite.
pub fn seconds(pids: &[u32]) -> anyhow::Result<f64> {
    let ticks = procfs::ticks_per_second() as f64;
    sum_over(pids, "stat", |process| {
        let stat = process.stat()?;
        let children = u64::try_from(stat.cutime + stat.cstime).unwrap_or(0);
        Ok((stat.utime + stat.stime + children) as f64 / ticks)
    })
}

/// CPU seconds (user + system, all threads) this process, the harness, has used so far: the
/// clients share the two cores with the servers, so what they spend is capacity the servers
/// do not get.
pub fn own_seconds() -> anyhow::Result<f64> {
    let ticks = procfs::ticks_per_second() as f64;
    let stat = Process::myself()
        .and_then(|me| me.stat())
        .context("reading /proc/self/stat")?;
    Ok((stat.utime + stat.stime) as f64 / ticks)
}

/// `measure` of each process in `pids`, summed; `file` names what it reads, for errors.
fn sum_over(
    pids: &[u32],
    file: &str,
    measure: impl Fn(&Process) -> procfs::ProcResult<f64>,
) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for &pid in pids {
        let pid = i32::try_from(pid).context("a process id out of range")?;
        total += Process::new(pid)
            .and_then(|process| measure(&process))
            .with_context(|| format!("reading /proc/{pid}/{file}"))?;
    }
    Ok(total)
}

/// The whole machine's CPU time so far, in clock ticks over every core.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    busy: u64,
    idle: u64,
    iowait: u64,
    steal: u64,
}

/// Reads `/proc/stat`.
pub fn machine() -> anyhow::Result<Machine> {
    use procfs::CurrentSI;
    let total = procfs::KernelStats::current()
        .context("reading /proc/stat")?
        .total;
    Ok(Machine {
        // `guest` is counted inside `user` already.
        busy: total.user
            + total.nice
            + total.system
            + total.irq.unwrap_or(0)
            + total.softirq.unwrap_or(0),
        idle: total.idle,
        iowait: total.iowait.unwrap_or(0),
        steal: total.steal.unwrap_or(0),
    })
}

impl Machine {
    /// How the cores spent the time since `before`, as shares of it: busy, idle, idle while
    /// a disk write was outstanding (a writer in `fsync` with nothing else to run), stolen by
    /// the host. Idle time during a measurement is throughput the service left on the table:
    /// the requests were all waiting for something other than a core.
    pub fn since(&self, before: &Machine) -> MachineShares {
        let busy = self.busy.saturating_sub(before.busy) as f64;
        let idle = self.idle.saturating_sub(before.idle) as f64;
        let iowait = self.iowait.saturating_sub(before.iowait) as f64;
        let steal = self.steal.saturating_sub(before.steal) as f64;
        let all = (busy + idle + iowait + steal).max(1.0);
        MachineShares {
            busy: busy / all,
            idle: idle / all,
            iowait: iowait / all,
            steal: steal / all,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MachineShares {
    pub busy: f64,
    pub idle: f64,
    pub iowait: f64,
    pub steal: f64,
}

impl std::fmt::Display for MachineShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} % busy, {:.0} % idle, {:.0} % idle waiting on the disk, {:.0} % stolen",
            100.0 * self.busy,
            100.0 * self.idle,
            100.0 * self.iowait,
            100.0 * self.steal
        )
    }
}
