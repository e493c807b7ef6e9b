//! Reading running processes from `/proc`. The start time comes from `/proc/<pid>/stat` and the
//! boot time, so it is exact even for processes that started before the agent.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

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

/// Boot time and tick rate, read once.
#[derive(Debug, Clone)]
pub struct Clock {
    pub boot_time: DateTime<Utc>,
    pub boot_id: String,
    ticks_per_second: u64,
}

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
        Ok(Self {
            boot_time: DateTime::from_timestamp(btime, 0).unwrap_or_default(),
            boot_id,
            // USER_HZ is 100 on every Linux architecture Tally targets.
            ticks_per_second: 100,
        })
    }

    fn at(&self, ticks: u64) -> DateTime<Utc> {
        self.boot_time
            + chrono::Duration::milliseconds((ticks * 1000 / self.ticks_per_second) as i64)
    }
}

/// Fields of `/proc/<pid>/stat` after the parenthesised command name, which may hold spaces.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

fn uid_of(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
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

/// One process, or `None` when it vanished or cannot be read.
pub fn read_process(clock: &Clock, pid: u32) -> Option<ProcessInfo> {
    let dir = PathBuf::from(format!("/proc/{pid}"));
    let (ppid, start_ticks) = parse_stat(&fs::read_to_string(dir.join("stat")).ok()?)?;
    let exe = fs::read_link(dir.join("exe")).ok()?;
    let cmdline = fs::read(dir.join("cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let invoked_as = Path::new(&*String::from_utf8_lossy(argv0))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| file_name(&exe));
    Some(ProcessInfo {
        pid,
        ppid,
        start_ticks,
        start: clock.at(start_ticks),
        uid: uid_of(&fs::read_to_string(dir.join("status")).ok()?)?,
        remote: remote_session(pid),
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

/// Every process visible now: pid → start ticks. Reads one small file per process; the full
/// [`read_process`] is left for processes not seen before.
pub fn running() -> HashMap<u32, u64> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parse_stat(&stat)?.1))
        })
        .collect()
}

/// Account names by uid, from `/etc/passwd`.
pub fn accounts() -> HashMap<u32, String> {
    fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat =
            "1234 (my prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(stat), Some((1, 98765)));
    }

    #[test]
    fn this_process_is_read_with_its_real_start() {
        let clock = Clock::read().unwrap();
        let me = read_process(&clock, std::process::id()).unwrap();
        assert!(me.start <= Utc::now() && me.start > clock.boot_time);
        assert_eq!(me.exe, std::env::current_exe().unwrap());
        assert_eq!(running().get(&std::process::id()), Some(&me.start_ticks));
    }
}
