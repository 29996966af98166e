//! The one place weir spawns processes.
//!
//! Every child gets its own process group, a complete (clean) environment,
//! no stdin, and its stdout/stderr streamed line by line into a [`LogSink`].
//! A timeout, a cancellation or dropping the future kills the whole group,
//! grandchildren included; so does the main child's exit, so a backgrounded
//! grandchild cannot keep the task's pipes open. The child is reaped with
//! `wait4(2)`, which is what gives its CPU time and peak RSS ([`Metering`]).
//!
//! Reaping and killing are ordered so that a signal is never sent to a
//! recycled process-group id: the child is first waited for with
//! `waitid(WNOWAIT)` (it stays a zombie, so its pid, which is also the group
//! id, cannot be reused), the leftovers of its group are killed, and only then
//! is it reaped. Every `killpg` takes the same lock and checks that the child
//! has not been reaped yet.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;
use weir_types::Metering;

use crate::action::{ActionError, LogSink, LogStream, TaskContext, humanize};

/// How long a process group gets between SIGTERM and SIGKILL by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// A log line longer than this is split into chunks of at most this many
/// bytes, so a child writing gigabytes without a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// After the main child has exited and its group has been killed, the pipes
/// normally reach end-of-file at once. Only a process that left the group
/// (`setsid`) can still hold them open; stop reading after this long.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Host variables a task inherits; everything else comes from the
/// environment's `vars` and weir itself (DESIGN.md §8: clean environments).
const HOST_ALLOWLIST: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
];

/// What to run, and under which conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// An absolute path, or a name looked up in `env`'s `PATH`.
    pub program: String,
    pub args: Vec<String>,
    /// The COMPLETE environment of the child: nothing is inherited.
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    /// Kill the process group after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL on timeout or cancellation.
    pub kill_grace: Duration,
}

impl ProcessSpec {
    /// `program` with no arguments, an empty environment, no timeout and the
    /// default kill grace.
    pub fn new(program: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        ProcessSpec {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: cwd.into(),
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }

    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn kill_grace(mut self, kill_grace: Duration) -> Self {
        self.kill_grace = kill_grace;
        self
    }
}

/// How a process ended, and what it used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessExit {
    /// The exit code, when the process exited normally.
    pub code: Option<i32>,
    /// The signal that killed it, when it did not.
    pub signal: Option<i32>,
    pub metering: Metering,
}

impl ProcessExit {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// `exit code 3`, `killed by signal SIGKILL (9)`.
impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {}", signal_name(signal)),
            (None, None) => write!(f, "unknown exit status"),
        }
    }
}

/// `SIGKILL (9)`, or `signal 77` for a number nix does not know.
pub fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(s) => format!("{} ({signal})", s.as_str()),
        Err(_) => format!("signal {signal}"),
    }
}

/// The clean environment of a task: a few host variables (only if set), then
/// the environment's `vars`, then weir's own `WEIR_*` variables, which win.
///
/// Each run parameter is `WEIR_PARAM_<NAME>`, the name uppercased with every
/// character other than `A-Z`, `0-9` and `_` replaced by `_`; strings are
/// passed raw, every other value as its JSON text.
pub fn task_env(cx: &TaskContext) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = HOST_ALLOWLIST
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    env.extend(cx.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let weir = [
        ("WEIR_RUN_ID", cx.run_id.to_string()),
        ("WEIR_PIPELINE", cx.pipeline.clone()),
        ("WEIR_STEP", cx.step.clone()),
        ("WEIR_ATTEMPT", cx.attempt.to_string()),
        ("WEIR_NAMESPACE", cx.namespace.clone()),
        ("WEIR_TASK_ID", cx.task_id.to_string()),
        ("WEIR_WORK_DIR", cx.work_dir.to_string_lossy().into_owned()),
    ];
    env.extend(weir.into_iter().map(|(k, v)| (k.to_owned(), v)));
    for (name, value) in &cx.params {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.insert(format!("WEIR_PARAM_{}", env_name(name)), value);
    }
    env
}

fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect()
}

/// Runs one process to completion, streaming its output into `log`.
///
/// Returns the exit status whatever it is (a non-zero code is not an error
/// here), [`ActionError::TimedOut`] or [`ActionError::Cancelled`] when weir
/// killed it, and [`ActionError::Spawn`] when it could not start.
pub async fn run_process(
    spec: &ProcessSpec,
    log: &dyn LogSink,
    cancel: &CancellationToken,
) -> Result<ProcessExit, ActionError> {
    if cancel.is_cancelled() {
        return Err(ActionError::Cancelled {
            metering: Metering::default(),
        });
    }
    let spawn_error = |source| ActionError::Spawn {
        program: spec.program.clone(),
        source,
    };

    let mut command = Command::new(resolve_program(&spec.program, &spec.env));
    command
        .args(&spec.args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let rss_floor_kib = own_peak_rss_kib();
    let started = Instant::now();
    let mut child = command.spawn().map_err(spawn_error)?;
    let group = Arc::new(Group {
        rss_floor_kib,
        // std widened the kernel's `pid_t` to `u32`; this undoes it.
        pgid: Pid::from_raw(child.id() as libc::pid_t),
        reaped: Mutex::new(false),
    });
    // From here on, every way out of this function (including the future
    // being dropped) kills the group; the reaper thread then reaps the child.
    let _guard = KillOnDrop(Arc::clone(&group));
    let reaper = tokio::task::spawn_blocking({
        let group = Arc::clone(&group);
        move || group.wait(started)
    });
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(spawn_error(io::Error::other(
            "the child's pipes are missing",
        )));
    };
    // Not `wait`ed for through `child`: the reaper owns that.
    drop(child);
    let stdout = tokio::process::ChildStdout::from_std(stdout).map_err(spawn_error)?;
    let stderr = tokio::process::ChildStderr::from_std(stderr).map_err(spawn_error)?;

    let pumps = async {
        tokio::join!(
            pump_lines(stdout, LogStream::Stdout, log),
            pump_lines(stderr, LogStream::Stderr, log),
        )
    };
    tokio::pin!(pumps);
    let mut pumps_done = false;

    let deadline = spec
        .timeout
        .and_then(|t| tokio::time::Instant::from_std(started).checked_add(t));
    let mut killing: Option<(Kill, tokio::time::Instant)> = None;
    let mut sigkill_sent = false;
    let mut reaper = reaper;
    let waited = loop {
        tokio::select! {
            biased;
            waited = &mut reaper => break waited,
            _ = &mut pumps, if !pumps_done => pumps_done = true,
            () = cancel.cancelled(), if killing.is_none() => {
                log.line(LogStream::System, "cancelled: sending SIGTERM to the task's processes");
                group.signal(Signal::SIGTERM);
                killing = Some((Kill::Cancelled, tokio::time::Instant::now() + spec.kill_grace));
            }
            () = sleep_until(deadline), if killing.is_none() => {
                let after = spec.timeout.unwrap_or_default();
                log.line(
                    LogStream::System,
                    &format!("timed out after {}: sending SIGTERM to the task's processes", humanize(after)),
                );
                group.signal(Signal::SIGTERM);
                killing = Some((Kill::TimedOut(after), tokio::time::Instant::now() + spec.kill_grace));
            }
            () = sleep_until(killing.map(|(_, grace)| grace)), if !sigkill_sent => {
                log.line(
                    LogStream::System,
                    &format!("still running {} after SIGTERM: sending SIGKILL", humanize(spec.kill_grace)),
                );
                group.signal(Signal::SIGKILL);
                sigkill_sent = true;
            }
        }
    };

    // The group has been SIGKILLed by the reaper: the pipes are at EOF as soon
    // as the kernel has torn its members down.
    if !pumps_done
        && tokio::time::timeout(DRAIN_AFTER_EXIT, &mut pumps)
            .await
            .is_err()
    {
        log.line(
            LogStream::System,
            "stopped reading output: a process that left the task's process group still holds stdout or stderr open",
        );
    }

    let (status, metering) = match waited {
        Ok(Ok(waited)) => waited,
        Ok(Err(e)) => return Err(wait_failed(spec, &e.to_string(), started)),
        Err(e) => return Err(wait_failed(spec, &e.to_string(), started)),
    };
    match killing {
        Some((Kill::TimedOut(after), _)) => Err(ActionError::TimedOut { after, metering }),
        Some((Kill::Cancelled, _)) => Err(ActionError::Cancelled { metering }),
        None => Ok(ProcessExit {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            metering,
        }),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    TimedOut(Duration),
    Cancelled,
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Only reachable if something else in this process reaps our children
/// (e.g. `SIGCHLD` set to `SIG_IGN`); reported as a failure of the task.
fn wait_failed(spec: &ProcessSpec, error: &str, started: Instant) -> ActionError {
    ActionError::Failed {
        message: format!("could not wait for `{}` to exit: {error}", spec.program),
        exit_code: None,
        metering: Metering {
            wall_s: started.elapsed().as_secs_f64(),
            ..Metering::default()
        },
    }
}

/// A child's process group, and whether the child (the group leader, whose
/// pid is the group id) has been reaped.
struct Group {
    pgid: Pid,
    /// weir's peak RSS at spawn: the floor of the child's reported peak.
    rss_floor_kib: u64,
    /// Held while signalling and while reaping, so that no signal is sent to
    /// the group id once the pid may have been recycled.
    reaped: Mutex<bool>,
}

impl Group {
    fn signal(&self, signal: Signal) {
        let reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        if !*reaped {
            // ESRCH (the group is already gone) is the expected failure.
            let _ = killpg(self.pgid, signal);
        }
    }

    /// Blocks until the child exits, kills what is left of its group, reaps
    /// it and returns its raw wait status and metering.
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn wait(&self, started: Instant) -> io::Result<(i32, Metering)> {
        use nix::sys::wait::{Id, WaitPidFlag, waitid};
        // Wait without reaping: the child stays a zombie, so its pid (the
        // group id) stays reserved until the leftovers have been killed.
        loop {
            match waitid(
                Id::Pid(self.pgid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
            ) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let wall_s = started.elapsed().as_secs_f64();
        let mut reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let (status, usage) = wait4(self.pgid.as_raw())?;
        *reaped = true;
        Ok((status, metering(wall_s, &usage, self.rss_floor_kib)))
    }

    /// Without `waitid(WNOWAIT)` (nix offers it on Linux and FreeBSD only)
    /// the leftovers are killed right after reaping, with a tiny window in
    /// which the group id could have been recycled.
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    fn wait(&self, started: Instant) -> io::Result<(i32, Metering)> {
        let (status, usage) = wait4(self.pgid.as_raw())?;
        let wall_s = started.elapsed().as_secs_f64();
        let mut reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = killpg(self.pgid, Signal::SIGKILL);
        *reaped = true;
        Ok((status, metering(wall_s, &usage, self.rss_floor_kib)))
    }
}

/// Reaps `pid`, returning its raw wait status and resource usage.
#[allow(
    unsafe_code,
    reason = "wait4(2) is the only way to get one child's CPU time and peak RSS; nix has no wrapper"
)]
fn wait4(pid: libc::pid_t) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live for the
        // whole call; `rusage` is plain old data, so the zeroed value is
        // already initialised, and wait4 overwrites it on success. The `pid`
        // is our own unreaped child, so no other process can be affected.
        let (ret, rusage) = unsafe {
            let ret = libc::wait4(pid, &mut status, 0, usage.as_mut_ptr());
            (ret, usage.assume_init())
        };
        if ret == pid {
            return Ok((status, rusage));
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// This process's peak RSS in KiB (0 if it cannot be read).
fn own_peak_rss_kib() -> u64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| u64::try_from(u.max_rss()).unwrap_or(0))
        .unwrap_or(0)
}

fn metering(wall_s: f64, usage: &libc::rusage, rss_floor_kib: u64) -> Metering {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
    let max_rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    let max_rss_kib = if cfg!(target_os = "macos") {
        max_rss / 1024
    } else {
        max_rss
    };
    Metering {
        wall_s,
        cpu_user_s: secs(usage.ru_utime),
        cpu_sys_s: secs(usage.ru_stime),
        max_rss_kib,
        rss_floor_kib,
    }
}

/// Kills the process group if the future running it is dropped mid-run.
struct KillOnDrop(Arc<Group>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.signal(Signal::SIGKILL);
    }
}

/// Streams `reader` into `log` line by line: lossy UTF-8, the trailing
/// `\n` / `\r\n` removed, lines longer than [`MAX_LINE_BYTES`] split into
/// chunks (at a character boundary when the text is valid UTF-8).
pub(crate) async fn pump_lines<R: AsyncRead + Unpin>(
    reader: R,
    stream: LogStream,
    log: &dyn LogSink,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let available = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(available) => available,
            Err(e) => {
                log.line(
                    LogStream::System,
                    &format!("could not read the task's {}: {e}", stream.as_str()),
                );
                break;
            }
        };
        let room = MAX_LINE_BYTES - line.len();
        let (take, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) if i < room => (i + 1, true),
            _ => (available.len().min(room), false),
        };
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if complete {
            emit(log, stream, &line);
            line.clear();
        } else if line.len() >= MAX_LINE_BYTES {
            let cut = char_boundary(&line);
            emit(log, stream, &line[..cut]);
            line.drain(..cut);
        }
    }
    if !line.is_empty() {
        emit(log, stream, &line);
    }
}

fn emit(log: &dyn LogSink, stream: LogStream, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    log.line(stream, &String::from_utf8_lossy(line));
}

/// Where to cut a full buffer so a multi-byte character at its end is not
/// split in two (which would turn it into two replacement characters).
fn char_boundary(buf: &[u8]) -> usize {
    let is_continuation = |b: u8| b & 0b1100_0000 == 0b1000_0000;
    let Some(start) = (1..=4.min(buf.len()))
        .map(|back| buf.len() - back)
        .find(|&i| !is_continuation(buf[i]))
    else {
        return buf.len();
    };
    let width = match buf[start] {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    };
    if start > 0 && buf.len() - start < width {
        start
    } else {
        buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(LogStream, String)>>);

    impl LogSink for Lines {
        fn line(&self, stream: LogStream, text: &str) {
            self.0.lock().unwrap().push((stream, text.to_owned()));
        }
    }

    impl Lines {
        fn texts(&self) -> Vec<String> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|(_, t)| t.clone())
                .collect()
        }
    }

    async fn pumped(input: &[u8]) -> Vec<String> {
        let lines = Lines::default();
        pump_lines(input, LogStream::Stdout, &lines).await;
        lines.texts()
    }

    #[tokio::test]
    async fn lines_lose_their_line_endings_and_keep_empty_lines() {
        assert_eq!(pumped(b"a\r\n\nb\nlast").await, ["a", "", "b", "last"]);
        assert!(pumped(b"").await.is_empty());
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(pumped(b"a\xffb\n").await, ["a\u{fffd}b"]);
    }

    #[tokio::test]
    async fn long_lines_are_chunked_without_splitting_characters() {
        // 'é' is two bytes; an odd prefix puts a character across the cut.
        let mut input = b"x".to_vec();
        input.extend("é".repeat(MAX_LINE_BYTES).as_bytes());
        input.extend(b"\nnext\n");
        let lines = pumped(&input).await;
        assert!(lines.iter().all(|l| l.len() <= MAX_LINE_BYTES));
        assert!(!lines.concat().contains('\u{fffd}'));
        assert_eq!(
            lines.len(),
            4,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(
            lines[..3].concat(),
            format!("x{}", "é".repeat(MAX_LINE_BYTES))
        );
        assert_eq!(lines[3], "next");
    }

    #[test]
    fn char_boundary_backs_up_only_over_an_incomplete_character() {
        assert_eq!(char_boundary(b"abc"), 3);
        assert_eq!(char_boundary("aé".as_bytes()), 3);
        assert_eq!(char_boundary(&"aé".as_bytes()[..2]), 1);
        assert_eq!(char_boundary(&"a€".as_bytes()[..3]), 1);
        assert_eq!(char_boundary(b"a\xff"), 2);
        assert_eq!(char_boundary(b""), 0);
    }

    #[test]
    fn exit_descriptions() {
        let exit = |code, signal| ProcessExit {
            code,
            signal,
            metering: Metering::default(),
        };
        assert_eq!(exit(Some(3), None).to_string(), "exit code 3");
        assert_eq!(
            exit(None, Some(9)).to_string(),
            "killed by signal SIGKILL (9)"
        );
        assert!(exit(Some(0), None).success());
        assert_eq!(signal_name(200), "signal 200");
    }

    #[test]
    fn param_names_become_env_names() {
        assert_eq!(env_name("min_amount"), "MIN_AMOUNT");
        assert_eq!(env_name("run-date.v2"), "RUN_DATE_V2");
    }
}

/// Kills (SIGKILL, whole process group) the leftover processes of a run's
/// tasks: those whose working directory is inside `dir` *and* whose
/// environment has `key=value` (weir sets `WEIR_RUN_ID` for every task).
/// Waits up to a second for them to be gone; returns how many groups were
/// signalled.
///
/// For resuming a run whose weir process died: its tasks' processes live on
/// in their own process groups. Matching both the directory and the
/// variable finds exactly the orphans of that run (not a user's shell that
/// happens to be `cd`'d into a task directory), with no pid recorded on the
/// hot path and no risk from reused pids. A process that changed directory
/// or cleared its environment escapes; a cgroup per task would catch it.
pub fn kill_task_processes(dir: &Path, key: &str, value: &str) -> usize {
    let Ok(dir) = dir.canonicalize() else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let marker = format!("{key}={value}");
    let mut groups = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let inside =
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir));
        let tagged = inside
            && std::fs::read(entry.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()));
        if tagged && let Ok(group) = nix::unistd::getpgid(Some(Pid::from_raw(pid))) {
            groups.insert(group);
        }
    }
    let own = nix::unistd::getpgrp();
    let killed: Vec<Pid> = groups
        .into_iter()
        .filter(|group| *group != own && killpg(*group, Signal::SIGKILL).is_ok())
        .collect();
    // A new attempt must not meet the old one's locks or ports.
    let deadline = Instant::now() + Duration::from_secs(1);
    while killed.iter().any(|g| killpg(*g, None).is_ok()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    killed.len()
}

/// The program to execute: as given when it is a path, else the first
/// executable of that name on the child's `PATH` (the child's, not weir's:
/// its environment is replaced), else the name unchanged so the spawn error
/// names it.
///
/// Resolving it here also keeps spawning cheap: std can only use
/// `posix_spawn` (vfork-like) when the program is a path or `PATH` is not
/// overridden; otherwise it `fork`s, copying weir's page tables for every
/// task, which profiling showed as the largest remaining per-task cost.
fn resolve_program(program: &str, env: &BTreeMap<String, String>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    if program.contains('/') {
        return PathBuf::from(program);
    }
    let path = env
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(program))
}

#[cfg(test)]
mod resolve_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn env_with_path(path: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("PATH".to_owned(), path.to_owned())])
    }

    #[test]
    fn programs_are_found_on_the_childs_path_not_weirs() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("weir-only-here");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = env_with_path(&format!("/nonexistent:{}", dir.path().display()));
        assert_eq!(resolve_program("weir-only-here", &env), tool);
        assert!(resolve_program("bash", &env_with_path("/usr/bin:/bin")).is_absolute());
    }

    #[test]
    fn non_executables_relative_entries_and_unknown_names_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.txt"), "x").unwrap();
        let env = env_with_path(&dir.path().display().to_string());
        assert_eq!(resolve_program("data.txt", &env), PathBuf::from("data.txt"));
        // `.` on PATH would make the task's working directory decide.
        assert_eq!(
            resolve_program("bash", &env_with_path(".")),
            PathBuf::from("bash")
        );
        assert_eq!(
            resolve_program("./local-script", &env),
            PathBuf::from("./local-script")
        );
    }
}
