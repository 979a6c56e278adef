//! A process's memory, open file descriptors and threads, read from `/proc` (Linux).

use std::io;

/// Memory figures from `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStatus {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size since the process started (`VmHWM`).
    pub peak_rss: u64,
    /// Virtual memory size now (`VmSize`).
    pub virtual_size: u64,
    /// Peak virtual memory size (`VmPeak`).
    pub peak_virtual: u64,
    /// Threads (`Threads`).
    pub threads: u64,
}

impl MemoryStatus {
    /// Reads the status of process `pid`.
    pub fn of(pid: u32) -> io::Result<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/status"))?)
    }

    /// The status of this process.
    pub fn own() -> io::Result<Self> {
        Self::of(std::process::id())
    }

    /// Parses the text of a `/proc/<pid>/status` file.
    ///
    /// ```
    /// let text = "Name:\tx\nVmPeak:\t  2048 kB\nVmSize:\t 1024 kB\nVmHWM:\t 512 kB\nVmRSS:\t 256 kB\nThreads:\t3\n";
    /// let status = erpc_chaos::procfs::MemoryStatus::parse(text).unwrap();
    /// assert_eq!(status.rss, 256 * 1024);
    /// assert_eq!(status.peak_virtual, 2048 * 1024);
    /// assert_eq!(status.threads, 3);
    /// ```
    pub fn parse(text: &str) -> io::Result<Self> {
        let mut status = Self::default();
        let mut seen = 0;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (slot, unit) = match key {
                "VmRSS" => (&mut status.rss, 1024),
                "VmHWM" => (&mut status.peak_rss, 1024),
                "VmSize" => (&mut status.virtual_size, 1024),
                "VmPeak" => (&mut status.peak_virtual, 1024),
                "Threads" => (&mut status.threads, 1),
                _ => continue,
            };
            let number = value.trim().trim_end_matches("kB").trim();
            *slot = number.parse::<u64>().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{key}: {value:?}: {e}"))
            })? * unit;
            seen += 1;
        }
        if seen < 5 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "status lacks VmRSS, VmHWM, VmSize, VmPeak or Threads",
            ));
        }
        Ok(status)
    }
}

/// Open file descriptors of process `pid` (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// Open sockets of process `pid` (its file descriptors that link to `socket:[..]`).
pub fn open_sockets(pid: u32) -> io::Result<usize> {
    let mut sockets = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // An fd closed between listing and reading is simply not counted.
        if let Ok(target) = std::fs::read_link(entry?.path()) {
            sockets += usize::from(target.to_string_lossy().starts_with("socket:"));
        }
    }
    Ok(sockets)
}

/// `bytes` as mebibytes with one decimal, for tables.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let status = MemoryStatus::own().expect("own status");
        assert!(status.rss > 0 && status.peak_rss >= status.rss);
        assert!(status.peak_virtual >= status.virtual_size);
        assert!(status.threads >= 1);
        assert!(open_fds(std::process::id()).expect("own fds") >= 3);
    }

    #[test]
    fn refuses_a_status_without_memory_lines() {
        assert!(MemoryStatus::parse("Name:\tx\n").is_err());
    }
}
