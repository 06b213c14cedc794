//! What the CLI's end-to-end tests share: running `orbi` to completion, and starting a
//! long-running `orbi` (a server, a node) that announces itself on its first stdout line.

#![allow(dead_code)] // Each test binary uses its own part.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, ChildStdout, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// One finished `orbi` run.
pub struct Run {
    pub code: i32,
    /// Stdout as JSON (`Null` when it is not).
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts a usage or input error: exit code 2 and a message on stderr containing every
    /// one of `parts`.
    #[track_caller]
    #[allow(dead_code)] // not every test binary uses it
    pub fn assert_usage_error(&self, parts: &[&str]) {
        assert_eq!(self.code, 2, "{}", self.stderr);
        for part in parts {
            assert!(
                self.stderr.contains(part),
                "{part:?} not in {}",
                self.stderr
            );
        }
    }
}

/// Runs `orbi args` in `dir` with no stdin, to completion.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, |_| {})
}

/// [`run`], with the command set up by `configure` first (a resource limit, say).
pub fn run_with(dir: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orbi"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    configure(&mut command);
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `orbi args` in `dir` with no stdin and `env` added, like [`run`], but killed (and the
/// test failed) if it has not exited within `limit`.
pub fn run_within(dir: &Path, args: &[&str], env: &[(&str, &Path)], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orbi"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8(text).unwrap()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = wait_within(&mut child, limit, args);
    let stdout = stdout.join().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: stderr.join().unwrap(),
    }
}

/// Waits for `child` at most `limit`; past it, kills it and fails the test naming `what`.
pub fn wait_within(child: &mut Child, limit: Duration, what: impl std::fmt::Debug) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("orbi {what:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A long-running `orbi` and the JSON line it printed first.
pub struct Started {
    pub child: Child,
    /// The rest of its stdout.
    pub stdout: BufReader<ChildStdout>,
    pub banner: Value,
}

impl Started {
    /// `NODE_ID@HOST:PORT` from the banner's `node/id` and `listen`.
    pub fn to(&self) -> String {
        format!(
            "{}@{}",
            self.banner["node/id"].as_str().unwrap(),
            self.banner["listen"].as_str().unwrap()
        )
    }
}

/// Starts `orbi args` in `dir` (stderr discarded) and waits for its first stdout line.
pub fn start(dir: &Path, args: &[&str]) -> Started {
    start_with(dir, args, |_| {})
}

/// [`start`], with the command set up by `configure` first (a resource limit, say).
pub fn start_with(dir: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Started {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orbi"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    configure(&mut command);
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let banner = serde_json::from_str(&first).expect("the first line is json");
    Started {
        child,
        stdout,
        banner,
    }
}

/// Lets the spawned process write files of at most `bytes` (RLIMIT_FSIZE), as an operator's
/// quota or a filesystem's limit would: a write past it is `EFBIG`, after `SIGXFSZ`, whose
/// default action (as under `prlimit --fsize`) kills the process unless it ignores the signal.
#[cfg(unix)]
pub fn limit_file_size(command: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit, async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts the spawned process with `SIGXFSZ` ignored (inherited across exec), so that a write
/// past [`limit_file_size`] is a plain `EFBIG` error, whatever the binary does about it.
#[cfg(unix)]
pub fn ignore_file_size_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only signal(2), async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
