//! `/metrics` in the Prometheus text format: requests, store latency, watches, the
//! reconcile loop, commands by kind and outcome, VMs by phase and hosts by state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};

/// A sum and a count of durations.
#[derive(Debug, Default)]
struct Timing {
    micros: AtomicU64,
    count: AtomicU64,
}

impl Timing {
    fn add(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
        let sum = self.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count.load(Ordering::Relaxed));
    }
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_time: Timing,
    store_time: Timing,
    step_time: Timing,
    /// Watches streaming now.
    pub watchers: AtomicU64,
    commands: Mutex<BTreeMap<(String, String), u64>>,
    gauges: Mutex<BTreeMap<(&'static str, String), u64>>,
    leading: AtomicBool,
}

impl Metrics {
    /// One HTTP request answered.
    pub fn request(&self, method: &Method, status: StatusCode, took: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), status.as_u16())).or_default() += 1;
        }
        self.request_time.add(took);
    }

    /// One call on the object store.
    pub fn store(&self, took: Duration) {
        self.store_time.add(took);
    }

    /// Whether this process runs the reconcile loop (always, on SQLite; while it leads,
    /// a replica on etcd).
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Relaxed);
    }

    /// One step of the reconcile loop.
    pub fn step(&self, took: Duration) {
        self.step_time.add(took);
    }

    /// A command to the driver ended (`outcome`: `done` or the failure's kind).
    pub fn command(&self, kind: &str, outcome: &str) {
        if let Ok(mut c) = self.commands.lock() {
            *c.entry((kind.to_owned(), outcome.to_owned())).or_default() += 1;
        }
    }

    /// Replaces the gauges of `family` (`vms` by phase, `hosts` by state).
    pub fn set_gauges(&self, family: &'static str, values: &BTreeMap<String, u64>) {
        if let Ok(mut g) = self.gauges.lock() {
            g.retain(|(f, _), _| *f != family);
            for (label, v) in values {
                g.insert((family, label.clone()), *v);
            }
        }
    }

    /// The text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP plinth_http_requests_total HTTP requests answered.\n# TYPE plinth_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, code), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "plinth_http_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
                );
            }
        }
        self.request_time.render(
            &mut out,
            "plinth_http_request_duration_seconds",
            "Time to answer a request (a watch: to its first byte).",
        );
        self.store_time.render(
            &mut out,
            "plinth_store_duration_seconds",
            "Time of a call on the object store, lock included.",
        );
        self.step_time.render(
            &mut out,
            "plinth_reconcile_duration_seconds",
            "Time of one step of the reconcile loop.",
        );
        let _ = writeln!(
            out,
            "# HELP plinth_watches Watches streaming now.\n# TYPE plinth_watches gauge\nplinth_watches {}",
            self.watchers.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP plinth_leader Whether this process runs the reconcile loop.\n# TYPE plinth_leader gauge\nplinth_leader {}",
            u8::from(self.leading.load(Ordering::Relaxed))
        );
        out.push_str("# HELP plinth_commands_total Commands to the driver, by kind and outcome.\n# TYPE plinth_commands_total counter\n");
        if let Ok(c) = self.commands.lock() {
            for ((kind, outcome), n) in c.iter() {
                let _ = writeln!(
                    out,
                    "plinth_commands_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        if let Ok(g) = self.gauges.lock() {
            for family in ["vms", "hosts"] {
                let label = if family == "vms" { "phase" } else { "state" };
                let _ = writeln!(
                    out,
                    "# HELP plinth_{family} Node VMs by phase, hosts by state, as the control plane sees them.\n# TYPE plinth_{family} gauge"
                );
                for ((_, l), v) in g.iter().filter(|((f, _), _)| *f == family) {
                    let _ = writeln!(out, "plinth_{family}{{{label}=\"{l}\"}} {v}");
                }
            }
        }
        out
    }
}
