//! The harness the integration tests share: each test runs the real `sluice`
//! binary as a child process, in a temporary directory holding its topology,
//! input and output files, and watches it from outside — its exit status, its
//! JSON log lines on stderr, its output files, and its HTTP API.
//!
//! Everything that waits has a deadline: a child that does not exit in time is
//! killed and the test fails with its log, so a hung topology cannot hang the
//! suite. Conditions are polled, never slept on.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod http_receiver;
pub mod redis_server;

/// The binary under test, built by cargo for the integration tests.
pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// The repository's own topology file (the HTTP collector, the main job).
pub fn repo_topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topology.toml")
}

/// The repository's replay example (`examples/replay.toml`).
pub fn replay_topology() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/replay.toml")
}

/// A temporary working directory for one test; removed when dropped.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("sluice-test-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `contents` to `rel`, creating its directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directory");
        }
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Appends `contents` to `rel` in one write.
    pub fn append(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        file.write_all(contents.as_ref())
            .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
    }

    /// Writes the topology file and returns its path.
    pub fn topology(&self, text: &str) -> PathBuf {
        self.write("topology.toml", text)
    }

    /// Runs `sluice gen <args>` into `rel`; returns the number of lines written.
    pub fn gen(&self, rel: &str, args: &[&str]) -> u64 {
        let path = self.path(rel);
        let out = File::create(&path).expect("create the gen output file");
        let status = Command::new(SLUICE)
            .arg("gen")
            .args(args)
            .stdout(out)
            .stderr(Stdio::inherit())
            .status()
            .expect("run sluice gen");
        assert!(status.success(), "sluice gen {args:?} failed: {status}");
        count_lines(&path)
    }

    /// Starts `sluice run -c <topology>` in the sandbox, logging JSON to a pipe.
    pub fn spawn(&self, topology: &Path) -> Sluice {
        Sluice::spawn(self.root(), topology, &[])
    }

    /// Like [`Sandbox::spawn`], with extra environment variables.
    pub fn spawn_with_env(&self, topology: &Path, env: &[(&str, String)]) -> Sluice {
        Sluice::spawn(self.root(), topology, env)
    }

    /// Runs a `sluice` subcommand in the sandbox to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_in(self.root(), args)
    }

    /// The events of an NDJSON file (empty when the file does not exist).
    pub fn ndjson(&self, rel: &str) -> Vec<Value> {
        read_ndjson(&self.path(rel))
    }

    /// Every file under `rel`, relative to the sandbox, sorted.
    pub fn files(&self, rel: &str) -> Vec<String> {
        let mut files = Vec::new();
        collect_files(&self.path(rel), &mut files);
        let mut names: Vec<String> = files.iter().map(|path| self.relative(path)).collect();
        names.sort();
        names
    }

    fn relative(&self, path: &Path) -> String {
        let path = path
            .strip_prefix(self.root())
            .expect("a file under the sandbox");
        let name = path.to_string_lossy();
        name.strip_prefix("./").unwrap_or(&name).to_owned()
    }

    /// Every NDJSON file under `rel` with its events, paths relative to the
    /// sandbox, sorted by path.
    pub fn ndjson_tree(&self, rel: &str) -> Vec<(String, Vec<Value>)> {
        let mut files = Vec::new();
        collect_files(&self.path(rel), &mut files);
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let events = read_ndjson(&path);
                (self.relative(&path), events)
            })
            .collect()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("read a directory entry").path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Runs `sluice <args>` with `cwd` as working directory.
pub fn cli_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(SLUICE)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sluice")
}

/// Parses an NDJSON file; every line must be a JSON value.
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("{}:{} is not JSON ({e}): {line}", path.display(), i + 1)
            })
        })
        .collect()
}

/// Non-blank lines of a file.
pub fn count_lines(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count() as u64
}

/// A port nobody listens on right now: bind port 0, read it, let it go.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// `[api]` listening on `port`, to put in front of a topology's text.
pub fn api_on(port: u16) -> String {
    format!("[api]\nlisten = \"127.0.0.1:{port}\"\n\n")
}

/// `[api]` switched off, for tests that watch only files and logs.
pub const NO_API: &str = "[api]\nenabled = false\n\n";

/// Polls `check` every `every` until it returns `Some`, or panics naming
/// `what` after `timeout`.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(every);
    }
}

/// The resident set size of process `pid` in KiB, from `/proc/PID/status`.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the file source reports in its last log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceReport {
    pub lines: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// A running `sluice run`.
pub struct Sluice {
    child: Child,
    /// stderr lines, collected by a thread so the pipe never fills.
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Sluice {
    fn spawn(cwd: &Path, topology: &Path, env: &[(&str, String)]) -> Sluice {
        let mut child = Command::new(SLUICE)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("run")
            .arg("-c")
            .arg(topology)
            .current_dir(cwd)
            .env("SLUICE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice run");
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("log lock").push(line);
            }
        });
        Sluice {
            child,
            stderr,
            reader: Some(reader),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("poll the child");
        }
        self.status
    }

    /// Waits for the process to exit; kills it and fails the test after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.try_status() {
                break status;
            }
            if Instant::now() >= deadline {
                // Already gone or not: either way it must not outlive the test.
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.join_reader();
                panic!(
                    "sluice did not exit within {timeout:?}; it was killed. Its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.join_reader();
        status
    }

    /// Waits for exit and asserts it succeeded.
    pub fn expect_success(&mut self, timeout: Duration) {
        let status = self.wait(timeout);
        assert!(
            status.success(),
            "sluice exited with {status}; its log:\n{}",
            self.log_text()
        );
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            // The thread only reads the pipe; it ends at EOF, when the child is gone.
            reader.join().expect("the stderr reader thread panicked");
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a valid signal number has no memory-safety
        // preconditions; the pid is our own child, not yet reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid} failed");
    }

    /// Everything written to stderr so far.
    pub fn log_text(&self) -> String {
        self.stderr.lock().expect("log lock").join("\n")
    }

    /// The JSON log lines so far (other lines are skipped).
    pub fn logs(&self) -> Vec<Value> {
        self.stderr
            .lock()
            .expect("log lock")
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Log lines whose message starts with `prefix`.
    pub fn logs_starting(&self, prefix: &str) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .collect()
    }

    /// The file source `id`'s final report. Call after the process exited.
    pub fn source_report(&self, id: &str) -> SourceReport {
        let line = self
            .logs_starting("file source finished reading")
            .into_iter()
            .find(|l| l["component_id"] == id)
            .unwrap_or_else(|| {
                panic!(
                    "no `file source finished reading` line for {id}; the log:\n{}",
                    self.log_text()
                )
            });
        let field = |name: &str| {
            line[name]
                .as_u64()
                .unwrap_or_else(|| panic!("`{name}` missing from {line}"))
        };
        SourceReport {
            lines: field("lines"),
            delivered: field("delivered"),
            failed: field("failed"),
        }
    }

    /// A client for this process's API on `port`, once `/ready` answers 200.
    pub fn api(&mut self, port: u16) -> Api {
        let api = Api::new(port);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.try_status() {
                self.join_reader();
                panic!(
                    "sluice exited ({status}) before its API was ready; its log:\n{}",
                    self.log_text()
                );
            }
            if api.ready() {
                return api;
            }
            assert!(
                Instant::now() < deadline,
                "the API on port {port} was not ready within 20s; the log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            // A failed test must not leave the process running.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The HTTP API of a running sluice.
pub struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    pub fn new(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("build an HTTP client"),
        }
    }

    fn get(&self, path: &str) -> reqwest::Result<reqwest::blocking::Response> {
        self.client.get(format!("{}{path}", self.base)).send()
    }

    /// True when `/ready` answers 200.
    pub fn ready(&self) -> bool {
        self.get("/ready").is_ok_and(|r| r.status().is_success())
    }

    /// `/topology` as JSON.
    pub fn topology(&self) -> Value {
        self.get("/topology")
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .expect("GET /topology")
    }

    /// `/metrics` as text.
    pub fn metrics(&self) -> String {
        self.get("/metrics")
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .expect("GET /metrics")
    }
}

/// The component `id` in a `/topology` document.
pub fn component<'a>(topology: &'a Value, id: &str) -> &'a Value {
    topology["components"]
        .as_array()
        .expect("components is an array")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no component {id} in {topology}"))
}

/// A counter of `component` from `/topology` (`received_events`, `sent_events`, ...).
pub fn counter(topology: &Value, id: &str, name: &str) -> u64 {
    component(topology, id)[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{id}.{name} is not a number in {topology}"))
}

/// The sum of the Prometheus series `name` whose labels include
/// `component_id="<id>"` (and `extra`, e.g. `reason="poison"`, when given).
pub fn metric(text: &str, name: &str, id: &str, extra: Option<&str>) -> Option<f64> {
    let wanted = format!("component_id=\"{id}\"");
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name{labels} value`: exactly this metric, not one it is a prefix of.
        let Some(labels_and_value) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = labels_and_value.rsplit_once("} ") else {
            continue;
        };
        let labels: Vec<&str> = labels.split(',').collect();
        if !labels.contains(&wanted.as_str()) || extra.is_some_and(|e| !labels.contains(&e)) {
            continue;
        }
        let value: f64 = value.trim().parse().expect("a numeric sample");
        *found.get_or_insert(0.0) += value;
    }
    found
}

/// A JSON string field of `event`, or a panic naming it.
pub fn str_field<'a>(event: &'a Value, name: &str) -> &'a str {
    event[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` is not a string in {event}"))
}

/// `n` small events `{"n":i,"messageId":"m-i",...}` for i in `from..from+n`, as NDJSON.
pub fn numbered_events(from: u64, n: u64) -> String {
    let mut text = String::with_capacity(n as usize * 96);
    for i in from..from + n {
        text.push_str(&format!(
            "{{\"n\":{i},\"messageId\":\"m-{i}\",\"type\":\"track\",\"event\":\"Tick\",\"timestamp\":\"2024-03-01T10:00:00Z\"}}\n"
        ));
    }
    text
}

/// The `n` fields of events, in order.
pub fn numbers(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["n"].as_u64().unwrap_or_else(|| panic!("no `n` in {e}")))
        .collect()
}
