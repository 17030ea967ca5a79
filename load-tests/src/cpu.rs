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
