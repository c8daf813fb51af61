//! Node processes: signals and liveness by process id.

/// What a process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running.
    Running,
    /// Stopped by SIGSTOP.
    Paused,
    /// Gone (or a zombie).
    Exited,
}

impl std::fmt::Display for ProcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Exited => "exited",
        })
    }
}

/// The state of process `pid`, from `/proc/<pid>/stat`.
pub fn state(pid: u32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Exited;
    };
    // The state letter follows the parenthesised command name.
    let letter = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .unwrap_or("X");
    match letter {
        "T" | "t" => ProcState::Paused,
        "Z" | "X" | "x" => ProcState::Exited,
        _ => ProcState::Running,
    }
}

/// Signals the testnet sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Graceful stop.
    Term,
    /// Crash.
    Kill,
    /// Freeze.
    Stop,
    /// Thaw.
    Cont,
}

/// Sends `sig` to `pid`; false if there was no such process.
pub fn signal(pid: u32, sig: Sig) -> bool {
    let number = match sig {
        Sig::Term => libc::SIGTERM,
        Sig::Kill => libc::SIGKILL,
        Sig::Stop => libc::SIGSTOP,
        Sig::Cont => libc::SIGCONT,
    };
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with a positive pid only sends a signal; it touches no memory of ours.
    unsafe { libc::kill(pid, number) == 0 }
}

/// The peak resident memory of process `pid` (`VmHWM` in `/proc/<pid>/status`), in KiB; `None`
/// if it cannot be read (no such process, or not Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
