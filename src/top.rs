//! `sluice top`: a terminal view of a running instance, like `vector top`.
//!
//! It polls the API's `/topology` every `interval` and shows, per component,
//! events in and out per second, rejections, errors, restarts and how full its
//! mailbox is — the backpressure picture at a glance. It only reads the API, so
//! it can watch any instance it can reach, and a sluice that goes away (or is
//! not up yet) shows as a "cannot reach" line, retried, never as a crash.
//!
//! # Layout
//!
//! The pieces are plain data so they are tested without a terminal:
//!
//! * [`Snapshot`] — one `/topology` document as structs.
//! * [`rows`] — two successive snapshots become one [`Row`] per component, with
//!   per-second rates from the counters' differences.
//! * [`View`] — what the screen shows: the latest rows, readiness, failures,
//!   and whether the API answered; [`View::render`] turns it into lines of text.
//! * [`run`] — the interactive loop: a polling thread feeds the view, crossterm
//!   draws it on the alternate screen; `q`, Esc or Ctrl-C quit and the terminal
//!   is restored on every way out. [`once`] prints one plain-text snapshot for
//!   scripts.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Color, Print, ResetColor, SetAttribute, SetForegroundColor};
use crossterm::terminal::{self, Clear, ClearType};
use crossterm::{cursor, execute, queue};
use serde::Deserialize;

use crate::config::ConfigDuration;

/// Cells of the mailbox bar.
const BAR_WIDTH: usize = 8;

/// How long a `/topology` request may take before it counts as unreachable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the interactive view checks for keys and redraws (the uptime
/// clock ticks even when no new data arrives).
const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// The shortest refresh interval: faster polling only loads the API.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Parses `--interval` (`"1s"`, `"500ms"`).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = ConfigDuration::parse(text)?.0;
    if interval < MIN_INTERVAL {
        return Err(format!(
            "interval \"{text}\" is shorter than {}ms (try \"1s\")",
            MIN_INTERVAL.as_millis()
        ));
    }
    Ok(interval)
}

/// A `/topology` document. Fields the view does not use are ignored, so a
/// newer sluice with more fields can still be watched.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub ready: bool,
    #[serde(default)]
    pub failures: Vec<Failure>,
    pub components: Vec<ComponentSnapshot>,
}

/// A failed component and why, as `/topology` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    pub component_id: String,
    pub reason: String,
}

/// One component's identity and counters at one moment.
#[derive(Debug, Clone, Deserialize)]
pub struct ComponentSnapshot {
    pub id: String,
    pub kind: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default = "one")]
    pub shards: u64,
    pub state: String,
    pub received_events: u64,
    pub sent_events: u64,
    pub rejected_events: u64,
    pub errors: u64,
    pub restarts: u64,
    pub mailbox: Mailbox,
}

fn one() -> u64 {
    1
}

/// A component's inbox (its fullest shard's): batches queued now, the most
/// ever queued, and the bound. Sources have no inbox: capacity 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Mailbox {
    pub depth: u64,
    pub peak: u64,
    pub capacity: u64,
}

impl Snapshot {
    /// Parses the body of `GET /topology`.
    pub fn parse(body: &str) -> Result<Snapshot, String> {
        serde_json::from_str(body)
            .map_err(|err| format!("the answer is not a /topology document ({err})"))
    }
}

/// One line of the table: a component's counters, with rates where an earlier
/// snapshot allows them (`None` on the first poll, or when the counters went
/// backwards because the instance restarted).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: String,
    pub kind: String,
    pub type_name: String,
    pub shards: u64,
    pub state: String,
    pub received_per_sec: Option<f64>,
    pub sent_per_sec: Option<f64>,
    pub rejected: u64,
    pub rejected_per_sec: Option<f64>,
    pub errors: u64,
    pub restarts: u64,
    pub mailbox: Mailbox,
}

/// The rows for `current`, in its component order, with rates over `elapsed`
/// since `previous`.
pub fn rows(previous: Option<&Snapshot>, current: &Snapshot, elapsed: Duration) -> Vec<Row> {
    let before: HashMap<&str, &ComponentSnapshot> = previous
        .map(|p| p.components.iter().map(|c| (c.id.as_str(), c)).collect())
        .unwrap_or_default();
    let secs = elapsed.as_secs_f64();
    current
        .components
        .iter()
        .map(|c| {
            let old = before.get(c.id.as_str());
            let per_sec = |counter: fn(&ComponentSnapshot) -> u64| {
                old.and_then(|old| rate(counter(old), counter(c), secs))
            };
            Row {
                id: c.id.clone(),
                kind: c.kind.clone(),
                type_name: c.type_name.clone(),
                shards: c.shards,
                state: c.state.clone(),
                received_per_sec: per_sec(|c| c.received_events),
                sent_per_sec: per_sec(|c| c.sent_events),
                rejected: c.rejected_events,
                rejected_per_sec: per_sec(|c| c.rejected_events),
                errors: c.errors,
                restarts: c.restarts,
                mailbox: c.mailbox,
            }
        })
        .collect()
}

fn rate(before: u64, after: u64, secs: f64) -> Option<f64> {
    // A counter that went down belongs to a restarted instance: no rate this time.
    (secs > 0.0 && after >= before).then(|| (after - before) as f64 / secs)
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    Title,
    Heading,
    Warning,
    Alert,
}

/// A line of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub tone: Tone,
}

impl Line {
    fn new(text: String, tone: Tone) -> Line {
        Line { text, tone }
    }
}

/// What the screen shows, updated by each poll's outcome.
pub struct View {
    url: String,
    interval: Duration,
    started: Instant,
    last: Option<(Instant, Snapshot)>,
    rows: Vec<Row>,
    /// Why the last poll failed; cleared by the next answer.
    error: Option<String>,
}

impl View {
    pub fn new(url: &str, interval: Duration, started: Instant) -> View {
        View {
            url: url.to_owned(),
            interval,
            started,
            last: None,
            rows: Vec::new(),
            error: None,
        }
    }

    /// Takes in the outcome of the poll made at `at`.
    pub fn observe(&mut self, at: Instant, result: Result<Snapshot, String>) {
        match result {
            Ok(snapshot) => {
                let previous = self.last.as_ref();
                let elapsed = previous.map_or(Duration::ZERO, |(t, _)| at.duration_since(*t));
                self.rows = rows(previous.map(|(_, s)| s), &snapshot, elapsed);
                self.last = Some((at, snapshot));
                self.error = None;
            }
            Err(err) => self.error = Some(err),
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The header, any failure or reachability lines, and the table.
    pub fn render(&self, now: Instant) -> Vec<Line> {
        let mut lines = Vec::with_capacity(self.rows.len() + 6);
        let readiness = match &self.last {
            None => "waiting",
            Some((_, s)) if s.ready => "ready",
            Some(_) => "NOT READY",
        };
        let failures = self.last.as_ref().map_or(&[][..], |(_, s)| &s.failures);
        lines.push(Line::new(
            format!(
                "sluice top  {}  {readiness}  {} failed  watching {}  every {}",
                self.url,
                failures.len(),
                clock(now.saturating_duration_since(self.started)),
                ConfigDuration(self.interval),
            ),
            Tone::Title,
        ));
        for failure in failures {
            lines.push(Line::new(
                format!(
                    "failed: {}: {}",
                    failure.component_id,
                    // One screen line per failure, whatever the panic message held.
                    failure.reason.replace('\n', " ")
                ),
                Tone::Alert,
            ));
        }
        if let Some(err) = &self.error {
            let stale = match &self.last {
                Some((at, _)) => format!(
                    " (showing data from {} ago)",
                    clock(now.saturating_duration_since(*at))
                ),
                None => String::new(),
            };
            lines.push(Line::new(
                format!("cannot reach {}: {err}, retrying{stale}", self.url),
                Tone::Alert,
            ));
        } else if self.last.is_none() {
            lines.push(Line::new(
                format!("waiting for the first answer from {}", self.url),
                Tone::Plain,
            ));
        }
        if self.last.is_some() {
            lines.push(Line::new(String::new(), Tone::Plain));
            lines.extend(table(&self.rows));
        }
        lines
    }
}

const HEADINGS: [&str; 12] = [
    "ID", "KIND", "TYPE", "SHARDS", "STATE", "IN/S", "OUT/S", "REJECTED", "ERRORS", "RESTARTS",
    "MAILBOX", "PEAK",
];

/// Numbers are aligned right; names, states and the mailbox bar left.
fn right_aligned(column: usize) -> bool {
    matches!(column, 3 | 5..=9 | 11)
}

fn table(rows: &[Row]) -> Vec<Line> {
    let cells: Vec<[String; 12]> = rows.iter().map(cells).collect();
    let mut widths = HEADINGS.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(width - cell.chars().count());
            if right_aligned(i) {
                text.push_str(&pad);
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&pad);
            }
        }
        text.trim_end().to_owned()
    };
    let mut lines = Vec::with_capacity(rows.len() + 1);
    lines.push(Line::new(line(&HEADINGS.map(str::to_owned)), Tone::Heading));
    for (row, cells) in rows.iter().zip(&cells) {
        let tone = match row.state.as_str() {
            "failed" => Tone::Alert,
            "restarting" => Tone::Warning,
            _ => Tone::Plain,
        };
        lines.push(Line::new(line(cells), tone));
    }
    lines
}

fn cells(row: &Row) -> [String; 12] {
    let rejected = match row.rejected_per_sec {
        Some(r) if r > 0.0 => format!("{} (+{}/s)", count(row.rejected), per_sec(Some(r))),
        _ => count(row.rejected),
    };
    let (mailbox, peak) = if row.mailbox.capacity == 0 {
        ("-".to_owned(), "-".to_owned())
    } else {
        let m = row.mailbox;
        (
            format!("{}/{} {}", m.depth, m.capacity, bar(m.depth, m.capacity)),
            m.peak.to_string(),
        )
    };
    [
        row.id.clone(),
        row.kind.clone(),
        row.type_name.clone(),
        row.shards.to_string(),
        row.state.clone(),
        per_sec(row.received_per_sec),
        per_sec(row.sent_per_sec),
        rejected,
        count(row.errors),
        count(row.restarts),
        mailbox,
        peak,
    ]
}

/// `[###.....]`: the share of `capacity` in use, rounded up so a single
/// queued batch shows.
fn bar(depth: u64, capacity: u64) -> String {
    let filled = if capacity == 0 {
        0
    } else {
        (depth.min(capacity) * BAR_WIDTH as u64).div_ceil(capacity) as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(BAR_WIDTH - filled))
}

/// A total, shortened: `999`, `1.2k`, `3.4M`.
fn count(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        scaled(n as f64)
    }
}

/// A rate, shortened: `-` when unknown, `0`, `2.5`, `340`, `12.3k`.
fn per_sec(rate: Option<f64>) -> String {
    match rate {
        None => "-".to_owned(),
        Some(0.0) => "0".to_owned(),
        Some(r) if r < 10.0 => format!("{r:.1}"),
        Some(r) if r < 1000.0 => format!("{r:.0}"),
        Some(r) => scaled(r),
    }
}

fn scaled(value: f64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, unit) in UNITS {
        if value >= scale {
            return format!("{:.1}{unit}", value / scale);
        }
    }
    format!("{value:.0}")
}

/// `45s`, `3m05s`, `2h03m`.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Reads `/topology` from a sluice API.
struct Client {
    agent: ureq::Agent,
    endpoint: String,
}

impl Client {
    fn new(url: &str) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
            endpoint: format!("{}/topology", url.trim_end_matches('/')),
        }
    }

    fn fetch(&self) -> Result<Snapshot, String> {
        match self.agent.get(&self.endpoint).call() {
            Ok(response) => {
                let body = response
                    .into_string()
                    .map_err(|err| format!("reading the answer failed: {err}"))?;
                Snapshot::parse(&body)
            }
            Err(ureq::Error::Status(code, _)) => Err(format!("GET /topology answered HTTP {code}")),
            Err(ureq::Error::Transport(transport)) => {
                // The transport's own Display repeats the URL the view already shows.
                let mut text = transport.kind().to_string();
                if let Some(message) = transport.message() {
                    text.push_str(": ");
                    text.push_str(message);
                }
                if let Some(source) = std::error::Error::source(&transport) {
                    text.push_str(": ");
                    text.push_str(&source.to_string());
                }
                Err(text)
            }
        }
    }
}

/// Prints one plain-text view to stdout: two polls `interval` apart, so the
/// rates are real. Returns 1 when the API cannot be read.
pub fn once(url: &str, interval: Duration) -> i32 {
    let client = Client::new(url);
    let started = Instant::now();
    let mut view = View::new(url, interval, started);
    for poll in 0..2 {
        if poll > 0 {
            std::thread::sleep(interval);
        }
        let at = Instant::now();
        match client.fetch() {
            Ok(snapshot) => view.observe(at, Ok(snapshot)),
            Err(err) => {
                eprintln!("sluice top: cannot reach {url}: {err}");
                return 1;
            }
        }
    }
    let mut out = io::stdout().lock();
    let written = view
        .render(Instant::now())
        .iter()
        .try_for_each(|line| writeln!(out, "{}", line.text))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => 0,
        // `sluice top --once | head` closing the pipe early is not a failure.
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            eprintln!("sluice top: writing the snapshot: {err}");
            1
        }
    }
}

/// The interactive view, until `q`, Esc or Ctrl-C. Returns the exit code.
pub fn run(url: &str, interval: Duration) -> i32 {
    let polls = spawn_poller(url, interval);
    let result = Screen::enter().and_then(|mut screen| screen.show(url, interval, &polls));
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("sluice top: the terminal failed: {err}");
            1
        }
    }
}

/// Polls `/topology` every `interval` on its own thread, so a slow or hung API
/// never delays a key press. The thread ends when the receiver is dropped.
fn spawn_poller(
    url: &str,
    interval: Duration,
) -> mpsc::Receiver<(Instant, Result<Snapshot, String>)> {
    // Two slots: the view drains them every redraw, so the poller rarely waits.
    let (tx, rx) = mpsc::sync_channel(2);
    let client = Client::new(url);
    std::thread::spawn(move || loop {
        let at = Instant::now();
        if tx.send((at, client.fetch())).is_err() {
            return;
        }
        std::thread::sleep(interval.saturating_sub(at.elapsed()));
    });
    rx
}

/// The terminal in raw mode on the alternate screen; dropping it restores the
/// terminal, on quit, on error and while unwinding from a panic.
struct Screen {
    out: io::Stdout,
}

impl Screen {
    fn enter() -> io::Result<Screen> {
        terminal::enable_raw_mode()?;
        // From here on, Drop undoes whatever part of the setup happened.
        let mut screen = Screen { out: io::stdout() };
        execute!(screen.out, terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(screen)
    }

    fn show(
        &mut self,
        url: &str,
        interval: Duration,
        polls: &mpsc::Receiver<(Instant, Result<Snapshot, String>)>,
    ) -> io::Result<()> {
        let mut view = View::new(url, interval, Instant::now());
        loop {
            while let Ok((at, result)) = polls.try_recv() {
                view.observe(at, result);
            }
            self.draw(&view.render(Instant::now()))?;
            if event::poll(REDRAW_EVERY)? {
                if let Event::Key(key) = event::read()? {
                    if quits(&key) {
                        return Ok(());
                    }
                }
                // Any other event (a resize) is picked up by the next draw.
            }
        }
    }

    fn draw(&mut self, lines: &[Line]) -> io::Result<()> {
        let (width, height) = terminal::size()?;
        let (width, height) = (usize::from(width), usize::from(height));
        // The last row holds the key hint.
        let room = height.saturating_sub(1);
        let shown = if lines.len() > room {
            room.saturating_sub(1)
        } else {
            lines.len()
        };
        let out = &mut self.out;
        queue!(out, terminal::BeginSynchronizedUpdate)?;
        for (y, line) in lines[..shown].iter().enumerate() {
            queue!(out, cursor::MoveTo(0, y as u16))?;
            match line.tone {
                Tone::Plain => {}
                Tone::Title => queue!(out, SetAttribute(Attribute::Bold))?,
                Tone::Heading => queue!(out, SetAttribute(Attribute::Reverse))?,
                Tone::Warning => queue!(out, SetForegroundColor(Color::Yellow))?,
                Tone::Alert => queue!(out, SetForegroundColor(Color::Red))?,
            }
            queue!(
                out,
                Print(fit(&line.text, width)),
                SetAttribute(Attribute::Reset),
                ResetColor,
                Clear(ClearType::UntilNewLine)
            )?;
        }
        queue!(out, cursor::MoveTo(0, shown as u16))?;
        if shown < lines.len() {
            let more = format!(
                "... {} more lines: enlarge the terminal",
                lines.len() - shown
            );
            queue!(out, Print(fit(&more, width)))?;
        }
        queue!(
            out,
            Clear(ClearType::FromCursorDown),
            cursor::MoveTo(0, room as u16),
            SetAttribute(Attribute::Dim),
            Print(fit("q quit", width)),
            SetAttribute(Attribute::Reset),
            terminal::EndSynchronizedUpdate
        )?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Best effort: if the terminal is gone there is nothing left to restore.
        let _ = execute!(self.out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// The first `width` characters of `text`.
fn fit(text: &str, width: usize) -> &str {
    match text.char_indices().nth(width) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(id: &str, received: u64, sent: u64, rejected: u64) -> ComponentSnapshot {
        ComponentSnapshot {
            id: id.to_owned(),
            kind: "transform".to_owned(),
            type_name: "filter".to_owned(),
            shards: 1,
            state: "running".to_owned(),
            received_events: received,
            sent_events: sent,
            rejected_events: rejected,
            errors: 0,
            restarts: 0,
            mailbox: Mailbox {
                depth: 1,
                peak: 4,
                capacity: 4,
            },
        }
    }

    fn snapshot(components: Vec<ComponentSnapshot>) -> Snapshot {
        Snapshot {
            ready: true,
            failures: Vec::new(),
            components,
        }
    }

    #[test]
    fn parses_the_topology_document_and_ignores_unknown_fields() {
        let body = r#"{
            "ready": false,
            "failures": [{"component_id": "slow", "reason": "panicked 3 times"}],
            "components": [{
                "id": "in", "kind": "source", "type": "file", "inputs": [],
                "outputs": ["_default", "rejected"], "shards": 1, "state": "running",
                "received_events": 10, "sent_events": 9, "rejected_events": 1,
                "errors": 0, "restarts": 2,
                "mailbox": {"depth": 0, "peak": 0, "capacity": 0},
                "something_new": true
            }],
            "edges": []
        }"#;
        let parsed = Snapshot::parse(body).expect("a valid document");
        assert!(!parsed.ready);
        assert_eq!(parsed.failures[0].component_id, "slow");
        let c = &parsed.components[0];
        assert_eq!((c.id.as_str(), c.type_name.as_str()), ("in", "file"));
        assert_eq!((c.received_events, c.restarts), (10, 2));
        let err = Snapshot::parse("<html>").expect_err("not JSON");
        assert!(err.contains("not a /topology document"), "{err}");
    }

    #[test]
    fn rates_are_counter_differences_per_second() {
        let before = snapshot(vec![component("a", 100, 90, 10)]);
        let after = snapshot(vec![component("a", 300, 250, 10)]);
        let rows = rows(Some(&before), &after, Duration::from_secs(2));
        assert_eq!(rows[0].received_per_sec, Some(100.0));
        assert_eq!(rows[0].sent_per_sec, Some(80.0));
        assert_eq!(rows[0].rejected_per_sec, Some(0.0));
        assert_eq!(rows[0].rejected, 10);
    }

    #[test]
    fn no_rates_without_a_previous_snapshot_a_new_component_or_a_reset_counter() {
        let first = snapshot(vec![component("a", 100, 100, 0)]);
        let rows_first = rows(None, &first, Duration::ZERO);
        assert_eq!(rows_first[0].received_per_sec, None);

        // The instance restarted (counters went down) and grew a component.
        let later = snapshot(vec![component("a", 5, 5, 0), component("b", 50, 50, 0)]);
        let rows_later = rows(Some(&first), &later, Duration::from_secs(1));
        assert_eq!(rows_later[0].received_per_sec, None);
        assert_eq!(rows_later[1].id, "b");
        assert_eq!(rows_later[1].received_per_sec, None);
    }

    #[test]
    fn the_view_keeps_the_last_rows_and_says_when_the_api_is_unreachable() {
        let t0 = Instant::now();
        let mut view = View::new("http://127.0.0.1:9598", Duration::from_secs(1), t0);
        let waiting = view.render(t0);
        assert!(waiting[1].text.starts_with("waiting for the first answer"));

        view.observe(t0, Ok(snapshot(vec![component("a", 0, 0, 0)])));
        view.observe(
            t0 + Duration::from_secs(1),
            Ok(snapshot(vec![component("a", 2000, 1500, 0)])),
        );
        assert_eq!(view.rows()[0].received_per_sec, Some(2000.0));

        view.observe(
            t0 + Duration::from_secs(2),
            Err("Connection Failed: refused".to_owned()),
        );
        let lines = view.render(t0 + Duration::from_secs(4));
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert!(
            texts[0].contains("ready") && texts[0].contains("watching 4s"),
            "{texts:?}"
        );
        assert_eq!(
            texts[1],
            "cannot reach http://127.0.0.1:9598: Connection Failed: refused, retrying \
             (showing data from 3s ago)"
        );
        assert_eq!(lines[1].tone, Tone::Alert);
        // The stale table stays on screen.
        assert!(texts.iter().any(|t| t.starts_with("a ")), "{texts:?}");
    }

    #[test]
    fn the_table_aligns_columns_and_shows_mailbox_fill() {
        let mut failing = component("dedupe_by_message", 10, 10, 5000);
        failing.state = "failed".to_owned();
        failing.restarts = 3;
        let mut source = component("in", 0, 0, 0);
        source.kind = "source".to_owned();
        source.mailbox = Mailbox::default();
        let before = snapshot(vec![source.clone(), failing.clone()]);
        failing.rejected_events = 7000;
        source.received_events = 12_345;
        let after = snapshot(vec![source, failing]);
        let lines = table(&rows(Some(&before), &after, Duration::from_secs(1)));
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "ID                 KIND       TYPE    SHARDS  STATE     IN/S  OUT/S        REJECTED  ERRORS  RESTARTS  MAILBOX         PEAK",
                "in                 source     filter       1  running  12.3k      0               0       0         0  -                  -",
                "dedupe_by_message  transform  filter       1  failed       0      0  7.0k (+2.0k/s)       0         3  1/4 [##......]     4",
            ]
        );
        assert_eq!(lines[0].tone, Tone::Heading);
        assert_eq!(lines[2].tone, Tone::Alert);
    }

    #[test]
    fn numbers_are_shortened() {
        assert_eq!(count(999), "999");
        assert_eq!(count(1_250), "1.2k");
        assert_eq!(count(3_400_000), "3.4M");
        assert_eq!(per_sec(None), "-");
        assert_eq!(per_sec(Some(0.0)), "0");
        assert_eq!(per_sec(Some(2.54)), "2.5");
        assert_eq!(per_sec(Some(340.2)), "340");
        assert_eq!(per_sec(Some(1_000_000.0)), "1.0M");
        assert_eq!(bar(0, 4), "[........]");
        assert_eq!(bar(1, 100), "[#.......]");
        assert_eq!(bar(9, 4), "[########]");
        assert_eq!(clock(Duration::from_secs(185)), "3m05s");
        assert_eq!(clock(Duration::from_secs(7380)), "2h03m");
    }

    #[test]
    fn intervals_need_a_unit_and_a_sane_length() {
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_interval("1").is_err());
        assert!(parse_interval("10ms")
            .expect_err("too short")
            .contains("10ms"));
    }

    #[test]
    fn q_escape_and_ctrl_c_quit() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert_eq!(fit("abcdef", 3), "abc");
        assert_eq!(fit("ab", 3), "ab");
    }
}
