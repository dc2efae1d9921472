//! `sluice top` against a real running instance: the interactive view read off
//! a tmux pseudo-terminal (it waits for an instance that is not up yet, then
//! shows every component with live rates, and `q` ends it with exit code 0),
//! and `--once`, the plain-text snapshot for scripts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

/// Events in the followed input: at `RATE` per second the pipeline stays busy
/// for a minute, far longer than a test takes.
const EVENTS: u64 = 60_000;
const RATE: u64 = 1_000;

/// A source feeding a rate-limited sink: steady traffic, a full mailbox in
/// front of the sink, and `follow` keeps the process up after the input is read.
fn start(sandbox: &Sandbox, port: u16) -> Sluice {
    sandbox.write("in.ndjson", numbered_events(0, EVENTS));
    let topology = sandbox.topology(&format!(
        r#"{api}
[engine]
mailbox_capacity = 4
shutdown_timeout = "5s"

[sources.in]
type = "file"
path = "in.ndjson"
at_end = "follow"
poll_interval = "50ms"

[transforms.stamp]
type = "enrich"
inputs = ["in"]
ops = [{{ op = "set", path = "pipeline", value = "sluice" }}]

[sinks.slow]
type = "blackhole"
inputs = ["stamp"]
rate = {RATE}
"#,
        api = api_on(port)
    ));
    sandbox.spawn(&topology)
}

/// The table row of component `id`, split on whitespace.
fn row<'a>(screen: &'a str, id: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&id))
}

/// The IN/S cell of a row is a rate above zero (`-` means not known yet).
fn moving(cells: &[&str]) -> bool {
    cells.get(5).is_some_and(|rate| !matches!(*rate, "-" | "0"))
}

/// A tmux server of this test's own, its socket in the test's sandbox, so
/// parallel tests never share sessions and nothing is left behind; dropping it
/// kills the server and whatever still runs in it.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn new(sandbox: &Sandbox) -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is required for this test (scripts/test.sh installs it)"
        );
        Tmux {
            socket: sandbox.path("tmux.sock"),
        }
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            // Inside another tmux, this one must not think it is nested.
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Starts `command` in a detached 160x40 session named `name`.
    fn start(&self, name: &str, command: &str) {
        let out = self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "160",
            "-y",
            "40",
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The visible screen of session `name` as text.
    fn screen(&self, name: &str) -> String {
        let out = self.tmux(&["capture-pane", "-p", "-t", name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn send_keys(&self, name: &str, keys: &str) {
        let out = self.tmux(&["send-keys", "-t", name, keys]);
        assert!(
            out.status.success(),
            "tmux send-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn has_session(&self, name: &str) -> bool {
        self.tmux(&["has-session", "-t", name]).status.success()
    }

    /// Polls the screen of `name` until `check` accepts it; on timeout the
    /// panic shows the last screen.
    fn wait_for_screen(&self, name: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            poll_until(
                Duration::from_secs(30),
                Duration::from_millis(100),
                what,
                || {
                    last = self.screen(name);
                    check(&last).then(|| last.clone())
                },
            )
        }));
        found.unwrap_or_else(|_| panic!("timed out waiting for {what}; the screen:\n{last}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // After a clean run the server is already gone and this fails: fine.
        let _ = self.tmux(&["kill-server"]);
    }
}

/// A shell word for `sh -c`.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn top_waits_for_the_instance_shows_live_rows_and_quits_on_q() {
    let sandbox = Sandbox::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let tmux = Tmux::new(&sandbox);
    let rc_file = sandbox.path("top.rc");
    // The exit code goes to a file: the session (and the pane) ends with it.
    tmux.start(
        "top",
        &format!(
            "{} top --url {url} --interval 300ms; echo $? > {}",
            quoted(Path::new(SLUICE)),
            quoted(&rc_file)
        ),
    );

    // Nothing listens yet: a retry line, not a crash.
    let screen = tmux.wait_for_screen("top", "the cannot-reach line", |s| {
        s.contains(&format!("cannot reach {url}: ")) && s.contains("retrying")
    });
    assert!(
        screen.starts_with(&format!("sluice top  {url}  waiting")),
        "{screen}"
    );

    let mut sluice = start(&sandbox, port);
    let screen = tmux.wait_for_screen("top", "every component moving", |s| {
        ["in", "stamp", "slow"]
            .iter()
            .all(|id| row(s, id).is_some_and(|cells| moving(&cells)))
    });
    assert!(
        screen.starts_with(&format!("sluice top  {url}  ready  0 failed  watching ")),
        "{screen}"
    );
    assert!(!screen.contains("cannot reach"), "{screen}");
    let heading = row(&screen, "ID").unwrap_or_else(|| panic!("no table heading:\n{screen}"));
    assert_eq!(
        heading,
        [
            "ID", "KIND", "TYPE", "SHARDS", "STATE", "IN/S", "OUT/S", "REJECTED", "ERRORS",
            "RESTARTS", "MAILBOX", "PEAK"
        ]
    );
    for (id, kind, type_name) in [
        ("in", "source", "file"),
        ("stamp", "transform", "enrich"),
        ("slow", "sink", "blackhole"),
    ] {
        let cells = row(&screen, id).expect("checked above");
        assert_eq!(
            cells[1..5],
            [kind, type_name, "1", "running"],
            "row {id}:\n{screen}"
        );
    }
    // The rate-limited sink holds the pipeline back: its mailbox has a bound.
    let slow = row(&screen, "slow").expect("checked above");
    assert!(slow[10].ends_with("/4"), "mailbox of slow:\n{screen}");
    assert_eq!(
        slow[7..10],
        ["0", "0", "0"],
        "rejected, errors, restarts:\n{screen}"
    );

    tmux.send_keys("top", "q");
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        "the tmux session to end after q",
        || (!tmux.has_session("top")).then_some(()),
    );
    let rc = std::fs::read_to_string(&rc_file).expect("the exit code file");
    assert_eq!(rc.trim(), "0", "sluice top's exit code");

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn top_once_prints_a_plain_snapshot_with_rates() {
    let sandbox = Sandbox::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut sluice = start(&sandbox, port);
    let api = sluice.api(port);
    // Rates need traffic between the two polls: wait until events reach the sink.
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(50),
        "events at the sink",
        || (counter(&api.topology(), "slow", "sent_events") > 0).then_some(()),
    );

    let out = sandbox.cli(&["top", "--url", &url, "--once", "--interval", "500ms"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sluice top --once failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("sluice top  {url}  ready  0 failed  watching ")),
        "{stdout}"
    );
    assert!(lines[0].ends_with("every 500ms"), "{stdout}");
    assert_eq!(lines[1], "", "{stdout}");
    assert!(lines[2].starts_with("ID "), "{stdout}");
    assert_eq!(
        lines.len(),
        6,
        "a header, a blank line, a heading and 3 rows:\n{stdout}"
    );
    for id in ["in", "stamp", "slow"] {
        let cells = row(&stdout, id).unwrap_or_else(|| panic!("no row {id}:\n{stdout}"));
        assert!(moving(&cells), "{id} shows no rate:\n{stdout}");
    }
    // No escape sequences: this output is for scripts.
    assert!(!stdout.contains('\x1b'), "{stdout:?}");

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(30));
}

#[test]
fn top_once_fails_clearly_when_nothing_listens() {
    let sandbox = Sandbox::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = sandbox.cli(&["top", "--url", &url, "--once"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("sluice top: cannot reach {url}: ")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
