//! Process statistics from `/proc`: CPU time, resident memory, open files.

use std::fs;

/// Which process to read: this one or a child.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pid {
    /// `/proc/self`.
    Current,
    /// `/proc/<pid>`.
    Child(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::Current => "/proc/self".to_string(),
            Pid::Child(pid) => format!("/proc/{pid}"),
        }
    }
}

/// User + system CPU seconds consumed so far (`utime + stime` of `/proc/<pid>/stat`).
pub(crate) fn cpu_seconds(pid: Pid) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("{}/stat", pid.dir())) else {
        return 0.0;
    };
    // The command name (field 2) may contain spaces; fields after it are plain.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")" field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub(crate) fn status_kib(pid: Pid, key: &str) -> u64 {
    let Ok(status) = fs::read_to_string(format!("{}/status", pid.dir())) else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of the process.
pub(crate) fn open_fds(pid: Pid) -> usize {
    fs::read_dir(format!("{}/fd", pid.dir()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Raises the soft open-file limit to the hard limit (idle-connection mode needs
/// thousands of sockets in both processes). Returns the new soft limit.
pub(crate) fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit not above the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}
