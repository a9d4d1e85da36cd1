//! kubectl-like verbs on a running `plinth serve`: `get` (and `-w`), `describe`,
//! `delete`, `wait`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use plinth_server::kinds::Resource;
use serde_json::Value;

use crate::Outcome;
use crate::client::{Client, ServerArgs, resource};

/// How `get` prints objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns.
    Table,
    /// Aligned columns, with the conditions' messages.
    Wide,
    /// YAML, one document per object.
    Yaml,
    /// JSON: the list, or one line per change with -w.
    Json,
    /// `kind/name` per line.
    Name,
}

/// Show objects of a running `plinth serve`: clusters (with Ready and node counts),
/// virtualmachines, hosts, events, and every kind `plinth validate` reads.
///
/// Exit codes: 0 shown, 2 usage or server error (404 when NAME does not exist).
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// The resource: clusters, virtualmachines (vm), hosts, events, inventories,
    /// environments, deployments, … (plural, singular or short name).
    kind: String,
    /// One object's name; all of them without it.
    name: Option<String>,
    /// Namespace of namespaced kinds (workloads); all namespaces without it.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// The guest cluster of a workload kind: two clusters may each have one of the name.
    #[arg(long)]
    cluster: Option<String>,
    #[command(flatten)]
    printing: Printing,
    #[command(flatten)]
    server: ServerArgs,
}

/// How `get` and `events` print: a format, and whether to go on with each change.
#[derive(Debug, clap::Args)]
struct Printing {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
    /// After the list, print each change as it happens, until Ctrl-C.
    #[arg(long, short = 'w')]
    watch: bool,
}

/// Where a workload's guest cluster is: its `plinth.dev/cluster` label.
const CLUSTER_POINTER: &str = "/metadata/labels/plinth.dev~1cluster";

/// `path`, of the guest cluster `cluster` when one is named.
fn in_cluster(path: String, cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("{path}?cluster={c}"),
        None => path,
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_cell(object: &Value, kind: &str) -> String {
    condition(object, kind).map_or_else(|| "-".to_owned(), |c| text(c, "/status").to_owned())
}

/// The messages of an object's conditions that are not True, or the Ready one.
fn message(object: &Value) -> String {
    let Some(conditions) = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
    else {
        return String::new();
    };
    conditions
        .iter()
        .filter(|c| !text(c, "/message").is_empty())
        .map(|c| format!("{}: {}", text(c, "/type"), text(c, "/message")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// An object's cells in a table.
type Cells = Box<dyn Fn(&Value) -> Vec<String>>;

/// The columns of `resource`, and an object's cells.
fn columns(resource: Resource, wide: bool) -> (Vec<&'static str>, Cells) {
    let (mut header, cells): (Vec<&'static str>, Cells) = match resource {
        Resource::Cluster => (
            vec!["NAME", "READY", "NODES", "PROGRESSING", "ACCEPTED"],
            Box::new(|o| {
                let nodes = match (o.pointer("/status/readyNodes"), o.pointer("/status/nodes")) {
                    (Some(r), Some(n)) => format!("{r}/{n}"),
                    _ => "-".to_owned(),
                };
                vec![
                    text(o, "/metadata/name").to_owned(),
                    condition_cell(o, "Ready"),
                    nodes,
                    condition_cell(o, "Progressing"),
                    condition_cell(o, "Accepted"),
                ]
            }),
        ),
        Resource::VirtualMachine => (
            vec!["NAME", "OWNER", "PHASE", "HOST"],
            Box::new(|o| {
                let cell = |p: &str| match text(o, p) {
                    "" => "-".to_owned(),
                    t => t.to_owned(),
                };
                // A node VM's cluster and pool, or a VirtualMachineSet's VM's set.
                let owner = match text(o, "/spec/virtualMachineSet") {
                    "" => format!("{}/{}", cell("/spec/cluster"), cell("/spec/pool")),
                    set => format!("vmset/{set}"),
                };
                vec![
                    cell("/metadata/name"),
                    owner,
                    cell("/status/phase"),
                    cell("/status/host"),
                ]
            }),
        ),
        Resource::Host => (
            vec!["NAME", "STATE", "VMS"],
            Box::new(|o| {
                let vms = o
                    .pointer("/status/vms")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                vec![
                    text(o, "/metadata/name").to_owned(),
                    text(o, "/status/state").to_owned(),
                    vms.to_string(),
                ]
            }),
        ),
        Resource::Event => (
            vec!["TIME", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            Box::new(|o| {
                let object = format!(
                    "{}/{}",
                    text(o, "/involvedObject/kind").to_ascii_lowercase(),
                    text(o, "/involvedObject/name")
                );
                vec![
                    text(o, "/eventTime").to_owned(),
                    text(o, "/type").to_owned(),
                    text(o, "/reason").to_owned(),
                    object,
                    text(o, "/message").to_owned(),
                ]
            }),
        ),
        r if r.info().namespaced => (
            vec!["CLUSTER", "NAMESPACE", "NAME", "ACCEPTED"],
            Box::new(|o| {
                vec![
                    text(o, CLUSTER_POINTER).to_owned(),
                    text(o, "/metadata/namespace").to_owned(),
                    text(o, "/metadata/name").to_owned(),
                    condition_cell(o, "Accepted"),
                ]
            }),
        ),
        _ => (
            vec!["NAME", "ACCEPTED"],
            Box::new(|o| {
                vec![
                    text(o, "/metadata/name").to_owned(),
                    condition_cell(o, "Accepted"),
                ]
            }),
        ),
    };
    if wide && resource != Resource::Event {
        header.push("MESSAGE");
        return (
            header,
            Box::new(move |o| {
                let mut row = cells(o);
                row.push(message(o));
                row
            }),
        );
    }
    (header, cells)
}

/// The colour a table cell is shown in on a terminal: green for good states, yellow for
/// those in between, red for bad ones; `None` for every other cell.
fn cell_colour(cell: &str) -> Option<&'static str> {
    const GREEN: &str = "32";
    const YELLOW: &str = "33";
    const RED: &str = "31";
    match cell {
        "True" | "Ready" | "Running" | "Normal" => Some(GREEN),
        "Unknown" | "Warning" | "Pending" | "Maintenance" | "Migrating" => Some(YELLOW),
        "False" | "Failed" | "Fenced" | "Down" | "NotReady" => Some(RED),
        _ => None,
    }
}

/// Whether tables are coloured: standard output is a terminal and `NO_COLOR` is unset.
fn coloured() -> bool {
    static COLOURED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *COLOURED.get_or_init(|| {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    })
}

/// `cell` padded to `width` and, when `colour`, painted by [`cell_colour`].
fn pad(cell: &str, width: usize, colour: bool) -> String {
    let padded = format!("{cell:<width$}");
    match cell_colour(cell).filter(|_| colour) {
        Some(code) => format!("\x1b[{code}m{cell}\x1b[0m{}", &padded[cell.len()..]),
        None => padded,
    }
}

/// Aligned columns, two spaces apart, as kubectl prints them; coloured on a terminal.
fn aligned(rows: &[Vec<String>], widths: &mut Vec<usize>) -> String {
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let colour = coloured();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(&pad(cell, 0, colour));
            } else {
                out.push_str(&pad(cell, widths[i], colour));
                out.push_str("  ");
            }
        }
        out.push('\n');
    }
    out
}

fn show(resource: Resource, format: Format, objects: &[Value]) -> String {
    match format {
        Format::Table | Format::Wide => {
            let (header, cells) = columns(resource, format == Format::Wide);
            let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect()];
            rows.extend(objects.iter().map(&cells));
            aligned(&rows, &mut Vec::new())
        }
        Format::Yaml => objects
            .iter()
            .map(|o| format!("---\n{}", crate::render::to_yaml(o)))
            .collect(),
        Format::Json => objects.iter().map(|o| format!("{o}\n")).collect(),
        Format::Name => objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}\n",
                    resource.info().kind.to_ascii_lowercase(),
                    text(o, "/metadata/name")
                )
            })
            .collect(),
    }
}

/// Runs `plinth get`.
pub(crate) fn get(args: &GetArgs) -> Result<Outcome> {
    let resource = resource(&args.kind)?;
    let client = Client::new(&args.server)?;
    let info = resource.info();
    if let (Some(name), false) = (&args.name, args.printing.watch) {
        let object: Value = client.get(&in_cluster(
            info.path(
                args.namespace
                    .as_deref()
                    .or(info.namespaced.then_some("default")),
                Some(name),
            ),
            args.cluster.as_deref(),
        ))?;
        let out = match args.printing.output {
            Format::Json => format!("{object:#}\n"),
            format => show(resource, format, std::slice::from_ref(&object)),
        };
        crate::output::stdout(out)?;
        return Ok(Outcome::Success);
    }
    let keep = |o: &Value| {
        args.name
            .as_ref()
            .is_none_or(|n| text(o, "/metadata/name") == n)
    };
    let path = in_cluster(
        info.path(args.namespace.as_deref(), None),
        args.cluster.as_deref(),
    );
    list(&client, resource, &path, &args.printing, &keep)
}

/// Prints the objects of `resource` at `path` (its collection) that `keep` keeps, then,
/// with `watch`, each change of one until Ctrl-C.
fn list(
    client: &Client,
    resource: Resource,
    path: &str,
    how: &Printing,
    keep: &dyn Fn(&Value) -> bool,
) -> Result<Outcome> {
    let mut list: Value = client.get(path)?;
    let items: Vec<Value> = list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| keep(o))
        .collect();
    if !how.watch {
        let out = match how.output {
            Format::Json => {
                list["items"] = Value::Array(items);
                format!("{list:#}\n")
            }
            format => show(resource, format, &items),
        };
        crate::output::stdout(out)?;
        return Ok(Outcome::Success);
    }
    // The list, then one line per change, columns as wide as the list's.
    let (header, cells) = columns(resource, how.output == Format::Wide);
    let mut widths = Vec::new();
    let mut rows = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    rows.extend(items.iter().map(&cells));
    let table = matches!(how.output, Format::Table | Format::Wide);
    // JSON lines say what happened, as the API's watch does: {"type", "object"}.
    let change = |kind: &str, object: &Value| {
        format!("{}\n", serde_json::json!({"type": kind, "object": object}))
    };
    let first = match how.output {
        _ if table => aligned(&rows, &mut widths),
        Format::Json => items.iter().map(|o| change("ADDED", o)).collect(),
        format => show(resource, format, &items),
    };
    crate::output::stdout(first)?;
    let from = text(&list, "/metadata/resourceVersion").to_owned();
    let mut failed = None;
    client.watch(path, Some(&from), None, |kind, object| {
        if !keep(object) {
            return true;
        }
        let line = match how.output {
            _ if table => aligned(&[cells(object)], &mut widths),
            Format::Json => change(kind, object),
            format => show(resource, format, std::slice::from_ref(object)),
        };
        match crate::output::stdout(line) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(Outcome::Success)
}

/// Show one object: its conditions, its node VMs (a cluster's), and its recent events.
///
/// Exit codes: 0 shown, 2 usage or server error.
#[derive(Debug, clap::Args)]
pub(crate) struct DescribeArgs {
    /// The resource.
    kind: String,
    /// The object's name.
    name: String,
    /// Namespace of a namespaced kind.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// The guest cluster of a workload kind: two clusters may each have one of the name.
    #[arg(long)]
    cluster: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth describe`.
pub(crate) fn describe(args: &DescribeArgs) -> Result<Outcome> {
    let resource = resource(&args.kind)?;
    let info = resource.info();
    let client = Client::new(&args.server)?;
    let object: Value = client.get(&in_cluster(
        info.path(Some(&args.namespace), Some(&args.name)),
        args.cluster.as_deref(),
    ))?;
    let mut fields = vec![("Name", args.name.clone()), ("Kind", info.kind.to_owned())];
    if info.namespaced {
        fields.push(("Namespace", args.namespace.clone()));
        fields.push(("Cluster", text(&object, CLUSTER_POINTER).to_owned()));
    }
    fields.push((
        "Version",
        text(&object, "/metadata/resourceVersion").to_owned(),
    ));
    let labels: Vec<Vec<String>> = fields
        .into_iter()
        .map(|(k, v)| vec![format!("{k}:"), v])
        .collect();
    let mut out = aligned(&labels, &mut Vec::new());
    // What the status says besides its conditions (a VM's phase and host, a host's state).
    let rest: serde_json::Map<String, Value> = object
        .get("status")
        .and_then(Value::as_object)
        .map(|s| {
            s.iter()
                .filter(|(k, _)| *k != "conditions")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if !rest.is_empty() {
        out.push_str("\nStatus:\n");
        for line in crate::render::to_yaml(&Value::Object(rest)).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str("\nConditions:\n");
    let conditions = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rows = vec![vec![
        "  TYPE".to_owned(),
        "STATUS".into(),
        "REASON".into(),
        "MESSAGE".into(),
    ]];
    rows.extend(conditions.iter().map(|c| {
        vec![
            format!("  {}", text(c, "/type")),
            text(c, "/status").to_owned(),
            text(c, "/reason").to_owned(),
            text(c, "/message").to_owned(),
        ]
    }));
    out.push_str(&aligned(&rows, &mut Vec::new()));
    if resource == Resource::Cluster {
        let vms: Value = client.get(&Resource::VirtualMachine.info().path(None, None))?;
        let mine: Vec<Value> = vms["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| text(v, "/spec/cluster") == args.name)
            .collect();
        out.push_str("\nNode VMs:\n");
        out.push_str(&show(Resource::VirtualMachine, Format::Table, &mine));
    }
    let events: Value = client.get(&Resource::Event.info().path(None, None))?;
    let about: Vec<Value> = events["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            text(e, "/involvedObject/kind") == info.kind
                && text(e, "/involvedObject/name") == args.name
        })
        .collect();
    out.push_str("\nEvents:\n");
    out.push_str(&show(Resource::Event, Format::Table, &about));
    crate::output::stdout(out)?;
    Ok(Outcome::Success)
}

/// Delete an object of a running `plinth serve`.
///
/// Exit codes: 0 deleted, 2 usage or server error (404 when it does not exist).
#[derive(Debug, clap::Args)]
pub(crate) struct DeleteArgs {
    /// The resource.
    kind: String,
    /// The object's name.
    name: String,
    /// Namespace of a namespaced kind.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// The guest cluster of a workload kind: two clusters may each have one of the name.
    #[arg(long)]
    cluster: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth delete`.
pub(crate) fn delete(args: &DeleteArgs) -> Result<Outcome> {
    let resource = resource(&args.kind)?;
    let client = Client::new(&args.server)?;
    client.delete(&in_cluster(
        resource
            .info()
            .path(Some(&args.namespace), Some(&args.name)),
        args.cluster.as_deref(),
    ))?;
    crate::output::stdout(format!(
        "{}/{} deleted\n",
        resource.info().kind.to_ascii_lowercase(),
        args.name
    ))?;
    Ok(Outcome::Success)
}

/// Wait until objects of a running `plinth serve` meet a condition, printing each
/// change of their condition while waiting.
///
/// Exit codes: 0 met, 1 timed out (the condition's last message is printed), 2 usage or
/// server error.
#[derive(Debug, clap::Args)]
pub(crate) struct WaitArgs {
    /// The resource.
    kind: String,
    /// One object's name; every object of the kind (at least one) without it.
    name: Option<String>,
    /// `condition=TYPE` (True) or `condition=TYPE=STATUS`.
    #[arg(long = "for", value_name = "condition=TYPE")]
    wait_for: String,
    /// Give up after this long.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5m")]
    timeout: Duration,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth wait`.
pub(crate) fn wait(args: &WaitArgs) -> Result<Outcome> {
    let resource = resource(&args.kind)?;
    let Some(spec) = args.wait_for.strip_prefix("condition=") else {
        bail!(
            "--for must be `condition=TYPE` or `condition=TYPE=STATUS`, not `{}`",
            args.wait_for
        );
    };
    let (kind, status) = spec.split_once('=').unwrap_or((spec, "True"));
    let client = Client::new(&args.server)?;
    if let Some(name) = &args.name {
        // A name that does not exist is an error now, not at the timeout.
        let info = resource.info();
        client.get::<Value>(&info.path(info.namespaced.then_some("default"), Some(name)))?;
    }
    let path = resource.info().path(None, None);
    let deadline = Instant::now() + args.timeout;
    let mut last: std::collections::BTreeMap<String, String> = Default::default();
    let mut met: std::collections::BTreeMap<String, bool> = Default::default();
    let mut done = false;
    let result = client.watch(&path, None, Some(deadline), |_, object| {
        let name = text(object, "/metadata/name").to_owned();
        if args.name.as_ref().is_some_and(|n| *n != name) {
            return true;
        }
        let c = condition(object, kind);
        let now = c.map_or_else(
            || "no such condition yet".to_owned(),
            |c| {
                format!(
                    "{}={} {}: {}",
                    kind,
                    text(c, "/status"),
                    text(c, "/reason"),
                    text(c, "/message")
                )
            },
        );
        if last.get(&name) != Some(&now) {
            crate::output::stderr(format!(
                "{}/{name}: {now}\n",
                resource.info().kind.to_ascii_lowercase()
            ));
            last.insert(name.clone(), now);
        }
        met.insert(name, c.is_some_and(|c| text(c, "/status") == status));
        done = !met.is_empty() && met.values().all(|m| *m);
        !done
    });
    match result {
        Ok(()) if done => {
            crate::output::stdout(format!("condition {kind}={status} met\n"))?;
            Ok(Outcome::Success)
        }
        Ok(()) => {
            crate::output::stderr(format!(
                "timed out after {} waiting for {kind}={status}\n",
                humantime::format_duration(args.timeout)
            ));
            Ok(Outcome::Invalid)
        }
        Err(e) => Err(e.into()),
    }
}

/// Show the service's events, as `kubectl events` does: the time, type, reason, object and
/// message of each, oldest first.
///
/// Exit codes: 0 shown, 2 usage or server error.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Only the events about this object, as KIND/NAME (`cluster/apps`, `vm/apps-cp-0`,
    /// `host/r1-h1`).
    #[arg(long = "for", value_name = "KIND/NAME")]
    about: Option<String>,
    #[command(flatten)]
    printing: Printing,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth events`.
pub(crate) fn events(args: &EventsArgs) -> Result<Outcome> {
    let about = match &args.about {
        Some(about) => {
            let Some((kind, name)) = about.split_once('/') else {
                anyhow::bail!("--for {about}: expected KIND/NAME, such as cluster/apps");
            };
            Some((resource(kind)?.info().kind, name))
        }
        None => None,
    };
    let keep = |event: &Value| {
        about.is_none_or(|(kind, name)| {
            text(event, "/involvedObject/kind") == kind
                && text(event, "/involvedObject/name") == name
        })
    };
    let client = Client::new(&args.server)?;
    list(
        &client,
        Resource::Event,
        &Resource::Event.info().path(None, None),
        &args.printing,
        &keep,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_painted_and_padded_to_the_same_width_as_plain_cells() {
        assert_eq!(pad("True", 7, true), "\x1b[32mTrue\x1b[0m   ");
        assert_eq!(pad("False", 5, true), "\x1b[31mFalse\x1b[0m");
        assert_eq!(pad("apps", 7, true), "apps   ");
        assert_eq!(pad("True", 7, false), "True   ");
    }
}
