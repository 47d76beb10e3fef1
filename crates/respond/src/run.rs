//! Running a program with an argument vector (no shell) under a timeout.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many bytes of stderr a record keeps.
pub const STDERR_HEAD: usize = 512;

/// What a finished (or killed) command did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Exit status (`None`: killed after the timeout).
    pub status: Option<ExitStatus>,
    /// The first [`STDERR_HEAD`] bytes of stderr, lossily decoded.
    pub stderr: String,
}

impl Ran {
    pub(crate) fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `exit status 0`, `killed after 2s`, plus the start of stderr.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        let mut s = match self.status {
            Some(st) => match st.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("ended by {st}"),
            },
            None => format!("killed after the {}ms timeout", timeout.as_millis()),
        };
        if !self.stderr.is_empty() {
            s.push_str("; stderr: ");
            s.push_str(self.stderr.trim_end());
        }
        s
    }
}

/// Runs `program` with `args`, stdin and stdout closed, stderr captured
/// (first [`STDERR_HEAD`] bytes). On Unix the command gets its own process
/// group, killed (SIGKILL) as a whole when `timeout` passes; the call
/// returns at most about 100 ms after the timeout.
///
/// # Errors
/// The program could not be started (not found, not executable, a NUL byte
/// in an argument).
pub(crate) fn run(program: &OsStr, args: &[String], timeout: Duration) -> Result<Ran, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    let (tx, rx) = mpsc::channel();
    if let Some(mut err) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut head = Vec::new();
            let _ = (&mut err).take(STDERR_HEAD as u64).read_to_end(&mut head);
            let _ = tx.send(head);
            // Drain the rest so the command never blocks on a full pipe.
            let _ = std::io::copy(&mut err, &mut std::io::sink());
        });
    }
    let deadline = Instant::now() + timeout;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= deadline => {
                kill(&mut child);
                break None;
            }
            Ok(None) => {
                std::thread::sleep(nap.min(deadline.saturating_duration_since(Instant::now())));
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => {
                kill(&mut child);
                return Err(format!("waiting for {}: {e}", program.to_string_lossy()));
            }
        }
    };
    // A background grandchild may hold stderr open: do not wait for it long.
    let head = rx
        .recv_timeout(Duration::from_millis(100))
        .unwrap_or_default();
    Ok(Ran {
        status,
        stderr: String::from_utf8_lossy(&head).into_owned(),
    })
}

/// Kills the child's process group (Unix) and the child, and reaps it.
fn kill(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let pid = rustix::process::Pid::from_child(child);
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}
