//! Reading running processes from `/proc`. The start time comes from `/proc/<pid>/stat` and the
//! boot time, so it is exact even for processes that started before the agent.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One running process as the agent needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Clock ticks after boot at which the process started (field 22 of `stat`).
    pub start_ticks: u64,
    pub start: DateTime<Utc>,
    /// The real executable (`/proc/<pid>/exe`).
    pub exe: PathBuf,
    /// The name the program was started as (`argv[0]`'s file name), e.g. `python3` for
    /// `/usr/bin/python3.11`.
    pub invoked_as: String,
    pub uid: u32,
    /// Runs in a remote session (SSH, xrdp); see [`remote_session`].
    pub remote: bool,
}

/// Boot time and tick rate. The boot time is the wall clock less the time since boot, to the
/// microsecond: `btime` in `/proc/stat` is truncated to the second, which made every start time
/// up to a second early and every run up to a second long.
///
/// The wall clock can be *stepped* while the agent runs (chrony's `makestep` after a boot, a
/// VM's time sync, a resume), and the time since boot is not: a boot time read once would then
/// date every later start off by the step, while ends (dated afresh from each exit event) are
/// not, so every run would be long or short by it. So the boot time is read again at each use
/// and the kept one replaced when they differ by more than [`STEP`]; within it the kept one
/// stands, so a process's start does not wander by the microseconds between readings. Copies
/// share the kept value.
#[derive(Debug, Clone)]
pub struct Clock {
    /// The boot time kept, in microseconds since the epoch.
    boot_micros: Arc<AtomicI64>,
    pub boot_id: String,
    ticks_per_second: u64,
}

/// How far a boot time read afresh may be from the kept one before the wall clock counts as
/// stepped: 1 ms, ten times what a reading may be off ([`READ_WITHIN`]) and a tenth of a tick.
const STEP: i64 = 1_000;

/// The most time, in nanoseconds, a reading of the boot time may take between its two reads of
/// `CLOCK_BOOTTIME` around the wall clock; a reading stalled longer (preempted, throttled) is
/// taken again, so a stall is never mistaken for a step.
const READ_WITHIN: i64 = 100_000;

impl Clock {
    pub fn read() -> std::io::Result<Self> {
        let stat = fs::read_to_string("/proc/stat")?;
        let btime: i64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| std::io::Error::other("no btime in /proc/stat"))?;
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| btime.to_string());
        let boot = boot_time().map_or(btime * 1_000_000, |t| t.timestamp_micros());
        Ok(Self {
            boot_micros: Arc::new(AtomicI64::new(boot)),
            boot_id,
            // USER_HZ is 100 on every Linux architecture Tally targets.
            ticks_per_second: 100,
        })
    }

    /// When `ticks` after boot was, for a process's start (field 22 of its `stat`).
    pub fn at(&self, ticks: u64) -> DateTime<Utc> {
        self.boot_time()
            + chrono::Duration::milliseconds((ticks * 1000 / self.ticks_per_second) as i64)
    }

    /// The wall-clock time of boot, following a step of the wall clock (see [`Clock`]).
    pub fn boot_time(&self) -> DateTime<Utc> {
        let kept = self.boot_micros.load(Ordering::Relaxed);
        let fresh = boot_time().map(|t| t.timestamp_micros());
        let settled = settle(kept, fresh);
        // One copy records (and logs) a step; another that saw it too finds it done.
        let swapped =
            self.boot_micros
                .compare_exchange(kept, settled, Ordering::Relaxed, Ordering::Relaxed);
        if settled != kept && swapped.is_ok() {
            let step_ms = (settled - kept) / 1000;
            tracing::info!(step_ms, "the wall clock was stepped; start times follow it");
        }
        DateTime::from_timestamp_micros(settled).unwrap_or_default()
    }
}

/// The boot time to use, in microseconds: the `kept` one unless one read afresh is more than
/// [`STEP`] away from it.
fn settle(kept: i64, fresh: Option<i64>) -> i64 {
    match fresh {
        Some(fresh) if (fresh - kept).abs() > STEP => fresh,
        _ => kept,
    }
}

/// The wall-clock time of boot: now less `CLOCK_BOOTTIME`, the clock process start times are
/// counted on (it includes time suspended). The wall clock is read between two reads of
/// `CLOCK_BOOTTIME` no more than [`READ_WITHIN`] apart, and set against their midpoint; `None`
/// when three tries were all stalled longer, or the clocks cannot be read.
fn boot_time() -> Option<DateTime<Utc>> {
    use nix::time::{clock_gettime, ClockId};
    let since_boot = || {
        let t = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
        Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec())
    };
    for _ in 0..3 {
        let before = since_boot()?;
        let now = Utc::now();
        let after = since_boot()?;
        if after - before <= READ_WITHIN {
            let midpoint = before + (after - before) / 2;
            return Some(now - chrono::Duration::nanoseconds(midpoint));
        }
    }
    None
}

/// What `/proc/<pid>/stat` says that the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name; an `exec` changes it, so it tells a forked child that has since run
    /// another program apart from the copy of its parent that it was.
    pub comm: String,
    pub ppid: u32,
    pub session: u32,
    pub start_ticks: u64,
}

/// Parses `stat`; the command name is parenthesised and may hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<Stat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let rest = stat.get(close + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    Some(Stat {
        comm: stat.get(open + 1..close)?.to_string(),
        ppid: fields.get(1)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// One process's `stat`, or `None` when it is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    let mut buf = [0u8; 1024];
    let n = read_small(&format!("/proc/{pid}/stat"), &mut buf)?;
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Reads a small `/proc` file with one `read`: procfs hands over a whole small file at once,
/// and `read_to_end` would spend a second call finding the end.
fn read_small(path: &str, buf: &mut [u8]) -> Option<usize> {
    use std::io::Read;
    fs::File::open(path).ok()?.read(buf).ok()
}

/// Whether the process runs in a remote session: its environment names an SSH connection or an
/// xrdp session. Readable for the agent's own user's processes, or all when run as root; other
/// processes count as console sessions.
pub fn remote_session(pid: u32) -> bool {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    env.split(|&b| b == 0).any(|var| {
        var.starts_with(b"SSH_CONNECTION=")
            || var.starts_with(b"SSH_CLIENT=")
            || var.starts_with(b"XRDP_SESSION=")
    })
}

/// The executable and the name it was started as: all the agent needs to decide whether a
/// process could match a rule, so the rest is read only for candidates.
pub fn names(pid: u32) -> Option<(PathBuf, String)> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let mut buf = [0u8; 512];
    let n = read_small(&format!("/proc/{pid}/cmdline"), &mut buf).unwrap_or(0);
    // argv[0] ends at the first NUL; a longer one than the buffer is cut, which only matters
    // for paths over 512 bytes, whose file name then falls back to the executable's.
    let argv0 = buf[..n]
        .split(|&b| b == 0)
        .next()
        .filter(|a| a.len() < buf.len())
        .unwrap_or_default();
    let invoked_as = Path::new(&*String::from_utf8_lossy(argv0))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| file_name(&exe));
    Some((exe, invoked_as))
}

/// Whether the session `session` (that `pid` belongs to) is remote. Every process of a session
/// shares the answer, so it is read from one process's environment and remembered for a minute
/// (a session id is reused only after its session ended).
fn session_is_remote(session: u32, pid: u32) -> bool {
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};
    static SESSIONS: OnceLock<Mutex<HashMap<u32, (bool, Instant)>>> = OnceLock::new();
    const FRESH: Duration = Duration::from_secs(60);
    let mut cache = SESSIONS
        .get_or_init(Default::default)
        .lock()
        .expect("session cache lock");
    if let Some((remote, at)) = cache.get(&session) {
        if at.elapsed() < FRESH && session != 0 {
            return *remote;
        }
    }
    let remote = remote_session(pid);
    if cache.len() > 4096 {
        cache.retain(|_, (_, at)| at.elapsed() < FRESH);
    }
    cache.insert(session, (remote, Instant::now()));
    remote
}

/// One process, or `None` when it vanished or cannot be read. `wanted` sees the executable and
/// the invoked name first; a process it declines is not read further.
pub fn read_process(
    clock: &Clock,
    pid: u32,
    wanted: impl Fn(&Path, &str) -> bool,
) -> Option<ProcessInfo> {
    let (exe, invoked_as) = names(pid)?;
    if !wanted(&exe, &invoked_as) {
        return None;
    }
    let stat = stat(pid)?;
    // The owner of /proc/<pid> is the process's user; cheaper than `status`, which makes the
    // kernel total up the process's memory.
    let uid = std::os::unix::fs::MetadataExt::uid(&fs::metadata(format!("/proc/{pid}")).ok()?);
    Some(ProcessInfo {
        pid,
        ppid: stat.ppid,
        start_ticks: stat.start_ticks,
        start: clock.at(stat.start_ticks),
        uid,
        remote: session_is_remote(stat.session, pid),
        exe,
        invoked_as,
    })
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
        .unwrap_or_default()
}

/// Every process visible now, by pid. Reads one small file per process.
pub fn running() -> HashMap<u32, Stat> {
    pids().filter_map(|pid| Some((pid, stat(pid)?))).collect()
}

/// The pids in `/proc`.
pub fn pids() -> impl Iterator<Item = u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
}

/// Account names by uid, asked of the system's name service when first needed, so directory
/// accounts (LDAP, SSSD, winbind) are named as well as local ones, and an account created
/// after the agent started is named too. Names are kept once found; a uid without a name is
/// asked again next time, and meanwhile is its number.
#[derive(Debug, Default)]
pub struct Accounts {
    names: HashMap<u32, String>,
}

impl Accounts {
    pub fn name(&mut self, uid: u32) -> String {
        if let Some(name) = self.names.get(&uid) {
            return name.clone();
        }
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(user)) => self.names.entry(uid).or_insert(user.name).clone(),
            Ok(None) => uid.to_string(),
            Err(e) => {
                tracing::warn!(uid, error = %e, "cannot look up the account; recording its uid");
                uid.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_named_by_the_name_service_and_unknown_uids_by_number() {
        let mut accounts = Accounts::default();
        assert_eq!(accounts.name(0), "root");
        assert_eq!(accounts.name(0), "root", "from the cache");
        // No system hands out this uid (it is just below the invalid (uid_t)-1).
        assert_eq!(accounts.name(u32::MAX - 1), (u32::MAX - 1).to_string());
        // Every local account in /etc/passwd is named as the file names it.
        let passwd = fs::read_to_string("/etc/passwd").unwrap();
        for line in passwd.lines().take(20) {
            let f: Vec<&str> = line.split(':').collect();
            let uid: u32 = f[2].parse().unwrap();
            assert!(
                passwd
                    .lines()
                    .any(|l| l.starts_with(&format!("{}:", accounts.name(uid)))),
                "uid {uid} named {} which /etc/passwd does not hold",
                accounts.name(uid)
            );
        }
    }

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat =
            "1234 (my prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let parsed = parse_stat(stat).unwrap();
        assert_eq!(
            (parsed.comm.as_str(), parsed.ppid, parsed.start_ticks),
            ("my prog", 1, 98765)
        );
    }

    #[test]
    fn a_child_starts_when_it_was_spawned_to_the_tick() {
        let clock = Clock::read().unwrap();
        let before = Utc::now();
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = Utc::now();
        let seen = read_process(&clock, child.id(), |_, _| true);
        child.kill().unwrap();
        child.wait().unwrap();
        let start = seen.unwrap().start;
        // Ticks are hundredths of a second, truncated; allow one more for clock reads.
        let tick = chrono::Duration::milliseconds(20);
        assert!(
            start >= before - tick && start <= after + tick,
            "started at {start}, spawned between {before} and {after}"
        );
    }

    #[test]
    fn the_boot_time_follows_a_step_of_the_wall_clock_not_the_jitter_of_reading_it() {
        let kept = 1_790_000_000_000_000;
        // Microseconds between reading the wall clock and the time since boot: kept.
        assert_eq!(settle(kept, Some(kept + 300)), kept);
        assert_eq!(settle(kept, Some(kept - 999)), kept);
        // The wall clock stepped 1.5 s forward or 2 ms back: followed.
        assert_eq!(settle(kept, Some(kept + 1_500_000)), kept + 1_500_000);
        assert_eq!(settle(kept, Some(kept - 2_000)), kept - 2_000);
        // No reading: kept.
        assert_eq!(settle(kept, None), kept);
        // Copies share what is kept: a clock whose kept boot time is a second off (as after a
        // step) dates starts from the real one again, in every copy.
        let clock = Clock::read().unwrap();
        let copy = clock.clone();
        let real = clock.boot_time();
        clock.boot_micros.fetch_sub(1_000_000, Ordering::Relaxed);
        let followed = copy.boot_time();
        // (Far from the second injected; a real step mid-test is the only other difference.)
        assert!(
            (followed - real).num_milliseconds().abs() < 500,
            "{followed} vs {real}"
        );
        assert_eq!(clock.boot_time(), followed);
    }

    #[test]
    fn this_process_is_read_with_its_real_start() {
        let clock = Clock::read().unwrap();
        let me = read_process(&clock, std::process::id(), |_, _| true).unwrap();
        assert!(me.start <= Utc::now() && me.start > clock.boot_time());
        assert_eq!(me.exe, std::env::current_exe().unwrap());
        assert_eq!(
            running().get(&std::process::id()).map(|s| s.start_ticks),
            Some(me.start_ticks)
        );
        assert!(read_process(&clock, std::process::id(), |_, _| false).is_none());
    }
}
