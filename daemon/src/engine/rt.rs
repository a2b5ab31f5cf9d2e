//! Real-time setup of the media thread: lock memory and ask for `SCHED_FIFO`.
//!
//! Both need privileges (root, or `CAP_IPC_LOCK`/`ulimit -l` and `CAP_SYS_NICE`/`ulimit -r`).
//! Nothing here fails hard: [`enter_realtime`] reports what worked and what did not, and the
//! caller logs it. The engine runs without them, with more jitter.

use nix::errno::Errno;
use nix::sys::mman::{mlockall, MlockAllFlags};
use serde::Serialize;

/// The outcome of one real-time step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtStep {
    /// Whether it worked.
    pub ok: bool,
    /// What was done, or why it failed and what to do about it.
    pub detail: String,
}

/// What [`enter_realtime`] achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtReport {
    /// `mlockall(MCL_CURRENT | MCL_FUTURE)`.
    pub memory_locked: RtStep,
    /// `sched_setscheduler(SCHED_FIFO)` for the calling thread.
    pub fifo_scheduling: RtStep,
}

impl RtReport {
    /// Whether both steps worked.
    pub fn all_ok(&self) -> bool {
        self.memory_locked.ok && self.fifo_scheduling.ok
    }

    /// One line per step, for the log.
    pub fn summary(&self) -> String {
        let line = |name: &str, s: &RtStep| {
            format!("{name}: {} ({})", if s.ok { "ok" } else { "FAILED" }, s.detail)
        };
        format!(
            "{}\n{}",
            line("memory lock", &self.memory_locked),
            line("SCHED_FIFO", &self.fifo_scheduling)
        )
    }
}

const EPERM_HINT: &str =
    "not allowed: run as root or grant CAP_SYS_NICE/ulimit -r, and CAP_IPC_LOCK/ulimit -l";

fn explain(what: &str, e: Errno) -> String {
    match e {
        Errno::EPERM | Errno::EACCES => format!("{what}: {EPERM_HINT}"),
        Errno::ENOMEM => format!("{what}: locked-memory limit too low (raise ulimit -l): {e}"),
        Errno::EINVAL => format!("{what}: invalid argument (priority must be 1..=99): {e}"),
        _ => format!("{what}: {e}"),
    }
}

/// Lock all memory and switch the calling thread to `SCHED_FIFO` at `priority` (1..=99).
///
/// Call it at the start of the media thread, before the first tick.
pub fn enter_realtime(priority: i32) -> RtReport {
    let memory_locked = match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => RtStep { ok: true, detail: "all current and future pages locked".into() },
        Err(e) => RtStep { ok: false, detail: explain("mlockall", e) },
    };
    let fifo_scheduling = match set_fifo(priority) {
        Ok(()) => RtStep { ok: true, detail: format!("SCHED_FIFO priority {priority}") },
        Err(e) => RtStep { ok: false, detail: explain("sched_setscheduler", e) },
    };
    RtReport { memory_locked, fifo_scheduling }
}

/// `sched_setscheduler(0, SCHED_FIFO, priority)`: nix has no wrapper for it.
#[allow(unsafe_code)]
fn set_fifo(priority: i32) -> Result<(), Errno> {
    let param = libc::sched_param { sched_priority: priority };
    // SAFETY: `param` is a fully initialised `sched_param` that lives across the call; the
    // kernel only reads it. pid 0 means the calling thread; no memory is shared otherwise.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_priority_is_refused_with_a_reason() {
        // Not `enter_realtime` itself: locking all memory of the test process is not wanted.
        // Priority 0 is never valid for SCHED_FIFO, whatever the privileges.
        let r = std::thread::spawn(|| set_fifo(0)).join().unwrap();
        let e = r.unwrap_err();
        assert!(e == Errno::EINVAL || e == Errno::EPERM, "{e}");
        let d = explain("sched_setscheduler", e);
        assert!(d.contains("priority") || d.contains("not allowed"), "{d}");
    }

    #[test]
    fn eperm_explains_the_privileges() {
        let d = explain("mlockall", Errno::EPERM);
        assert!(d.contains("CAP_SYS_NICE") && d.contains("CAP_IPC_LOCK"), "{d}");
        let r = RtReport {
            memory_locked: RtStep { ok: true, detail: "locked".into() },
            fifo_scheduling: RtStep { ok: false, detail: d },
        };
        assert!(!r.all_ok());
        assert!(r.summary().contains("SCHED_FIFO: FAILED"), "{}", r.summary());
    }
}
