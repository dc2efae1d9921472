//! The dashboards and alert rules in `dashboards/` work against what sluice
//! really exports: sluice runs a followed-file topology with one component of
//! every type and its API, fed while it runs; a real Prometheus (the
//! `prometheus` binary, which `scripts/test.sh` installs) scrapes it every
//! second with the alert rules loaded; then every PromQL expression in
//! `dashboards/*.json` is evaluated through Prometheus' HTTP API and must parse
//! and return data, and every alert rule must evaluate without error. promtool
//! checks the rules and runs their unit tests.

mod common;
mod observability;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::*;
use observability::*;

/// Metrics only the `sessionize` transform exports. Until that type exists,
/// dashboard queries over them are reported as skipped; every other query
/// must return data.
const SESSIONIZE_METRICS: &[&str] = &[
    "sluice_sessions_open",
    "sluice_sessions_closed_total",
    "sluice_watermark_lag_seconds",
];

/// What Grafana's range variables become for the test: long enough to hold
/// several 1-second scrapes.
const WINDOW: &str = "30s";

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// The path of `name` on `PATH`, or a failure saying how to get it.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed, so the dashboards cannot be checked against a real \
                 Prometheus: run ./scripts/test.sh (it installs it), or `apt-get install -y prometheus`"
            )
        })
}

/// A Prometheus server on a free loopback port, scraping `target` every
/// second with `rules` loaded; killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: u16, rules: &Path) -> Prometheus {
        let binary = tool("prometheus");
        let dir = tempfile::Builder::new()
            .prefix("sluice-prometheus-")
            .tempdir()
            .expect("create a directory for Prometheus");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {rules}\n\
                 scrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n",
                rules = rules.display()
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the Prometheus log"))
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("build an HTTP client"),
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` as JSON, or `None` while the server is not answering.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .ok()?;
        response.json().ok()
    }

    fn wait_ready(&mut self) {
        poll_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            "Prometheus to be ready",
            || {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "prometheus exited ({status}); its log:\n{}",
                        self.log_text()
                    );
                }
                let ready = self
                    .client
                    .get(format!("{}/-/ready", self.base))
                    .send()
                    .is_ok_and(|r| r.status().is_success());
                ready.then_some(())
            },
        );
    }

    /// An instant query: `Ok(data)` or the error Prometheus gave.
    fn query(&self, expr: &str) -> Result<Value, String> {
        let body = self
            .get("/api/v1/query", &[("query", expr)])
            .ok_or_else(|| "Prometheus did not answer".to_owned())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // It may have exited already; either way it must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a query's result holds anything.
fn has_data(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar") | Some("string") => true,
        _ => false,
    }
}

/// Every PromQL expression of the dashboards, with where it comes from:
/// panel targets (`expr`, in rows too) and `label_values(<expr>, label)`
/// variable queries.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("read dashboards/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards/*.json");
    for file in files {
        let name = file
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).expect("read a dashboard");
        let dashboard: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
        collect_exprs(&dashboard, &name, &mut queries);
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if variable["type"] != "query" {
                continue;
            }
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .unwrap_or_default();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(','))
                .map(|(expr, _label)| expr.trim());
            if let Some(expr) = inner {
                let at = format!("{name}: variable {}", variable["name"]);
                queries.push((at, expr.to_owned()));
            }
        }
    }
    queries
}

fn collect_exprs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            let here = match map.get("title").and_then(Value::as_str) {
                Some(title) if map.contains_key("type") => format!("{at}: panel \"{title}\""),
                _ => at.to_owned(),
            };
            if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                out.push((here.clone(), expr.to_owned()));
            }
            for child in map.values() {
                collect_exprs(child, &here, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, at, out)),
        _ => {}
    }
}

/// The `sluice_*` metric names an expression mentions.
fn metric_names(expr: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sluice_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(&tail[..end]);
        rest = &tail[end..];
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// Replaces Grafana's variables: range variables by [`WINDOW`], the others
/// (`$instance`, `${component}`, used in regex matchers) by `.*`.
fn substitute(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced
                    .find('}')
                    .unwrap_or_else(|| panic!("unclosed ${{ in {expr}"));
                let name = braced[..end].split(':').next().unwrap_or_default();
                (name, end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "__rate_interval" | "__interval" | "__range" => WINDOW,
            _ => ".*",
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[test]
fn metric_names_are_found_in_expressions() {
    assert_eq!(
        metric_names("sum(rate(sluice_a_total{x=\"y\"}[1m])) / sum(sluice_b) or sluice_a_total"),
        vec!["sluice_a_total", "sluice_b"]
    );
}

#[test]
fn variables_are_replaced_like_grafana_would() {
    assert_eq!(
        substitute(r#"rate(x{a=~"$instance", b=~"${component:regex}"}[$__rate_interval])"#),
        r#"rate(x{a=~".*", b=~".*"}[30s])"#
    );
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    // Fail fast, before starting anything, if Prometheus is missing.
    tool("prometheus");
    let sandbox = Sandbox::new();
    let port = free_port();
    let head = format!(
        "{}[engine]\nbatch_size = 32\nmailbox_capacity = 4\nshutdown_timeout = \"10s\"\n",
        api_on(port)
    );
    let topology = every_type_topology(&head, false);
    let has_sessionize = topology.has_type("sessionize");
    sandbox.write(INPUT, special_lines() + &live_events(0, 500));
    let path = sandbox.topology(&topology.toml);
    let mut sluice = sandbox.spawn(&path);
    sluice.api(port);
    // Under load for the whole test: a few thousand events a second.
    let _feeder = Feeder::start(sandbox.path(INPUT), 10_000, 100, Duration::from_millis(25));
    let _http = topology.feed_http(100, Duration::from_millis(50));

    let mut prometheus = Prometheus::start(port, &dashboards_dir().join("alerts.yml"));
    prometheus.wait_ready();
    // Enough scrapes that a 30s rate has several samples.
    poll_until(
        Duration::from_secs(25),
        Duration::from_millis(250),
        "Prometheus to scrape sluice five times",
        || {
            assert!(
                sluice.try_status().is_none(),
                "sluice exited early:\n{}",
                sluice.log_text()
            );
            let data = prometheus
                .query("count_over_time(sluice_build_info[1m]) >= 5")
                .ok()?;
            has_data(&data).then_some(())
        },
    );

    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let queries = dashboard_queries();
    for (at, expr) in &queries {
        let sessionize_only = SESSIONIZE_METRICS.iter().any(|m| expr.contains(m));
        if sessionize_only && !has_sessionize {
            skipped.push(format!("{at}: {expr}"));
            continue;
        }
        let query = substitute(expr);
        match prometheus.query(&query) {
            Ok(data) if has_data(&data) => {}
            Ok(data) => failures.push(format!("{at}: no data for {query}\n  (result: {data})")),
            Err(err) => failures.push(format!("{at}: {query} failed: {err}")),
        }
        // `... or vector(0)` returns data even for a misspelled metric: each
        // metric named must have series of its own.
        for metric in metric_names(expr) {
            let exported = prometheus
                .query(&format!("count({metric})"))
                .is_ok_and(|data| has_data(&data));
            if !exported {
                failures.push(format!("{at}: sluice does not export {metric}"));
            }
        }
    }
    for query in &skipped {
        eprintln!(
            "skipped, no `sessionize` transform type exists yet to export its metrics: {query}"
        );
    }

    // The alert rules evaluate against the real series without error.
    let rules = poll_until(
        Duration::from_secs(10),
        Duration::from_millis(200),
        "every alert rule to be evaluated",
        || {
            let body = prometheus.get("/api/v1/rules", &[])?;
            let rules: Vec<Value> = body["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let evaluated = !rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown");
            evaluated.then_some(rules)
        },
    );
    for rule in &rules {
        if rule["health"] != "ok" {
            failures.push(format!(
                "alert {} does not evaluate: {}",
                rule["name"], rule["lastError"]
            ));
        }
    }

    sluice.terminate();
    sluice.expect_success(Duration::from_secs(15));
    assert!(
        queries.len() > skipped.len() + 10,
        "found only {} dashboard queries",
        queries.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries or rules failed:\n{}\n\nPrometheus log:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n"),
        prometheus.log_text()
    );
}

#[test]
fn promtool_checks_the_alert_rules_and_their_unit_tests_pass() {
    let promtool = tool("promtool");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        let output = Command::new(&promtool)
            .args(args)
            .current_dir(dashboards_dir())
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn dashboards_pick_their_prometheus_through_the_datasource_variable() {
    let dir = dashboards_dir();
    for file in [
        "provisioning/dashboards/sluice.yml",
        "provisioning/datasources/prometheus.yml",
    ] {
        assert!(dir.join(file).is_file(), "dashboards/{file} is missing");
    }
    let text =
        std::fs::read_to_string(dir.join("sluice-overview.json")).expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "no `datasource` variable of type prometheus"
    );
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        let title = &panel["title"];
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title}");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "panel {title}"
            );
        }
    }
    assert!(panels >= 15, "only {panels} panels");
}
