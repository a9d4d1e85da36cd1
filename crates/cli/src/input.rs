//! Reading an input from the command line: files, directories (every `.yaml`/`.yml` below
//! them, in name order) and `-` for stdin, plus `--cluster NAME=PATH` bindings and the
//! Calibration file an Environment names; loading it, and reporting what the load found
//! the same way for every command.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use plinth_model::{Diagnostic, Diagnostics, Input, Loaded, Severity, SourceFile, load};

use crate::render::render;

/// Why an input could not be read. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// A path could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory held no manifests.
    #[error("`{0}` holds no .yaml or .yml files")]
    EmptyDirectory(PathBuf),
    /// A file is not UTF-8.
    #[error("`{0}` is not UTF-8 text")]
    NotText(PathBuf),
    /// A directory holds a kustomization, which Plinth does not apply.
    #[error(
        "`{file}` is a kustomization: Plinth does not apply it, and reading `{dir}` file by file would lose its namespace, replicas and patches; render it with `kubectl kustomize {dir}` and pass the output as a file or on standard input (`-`), or pass --ignore-kustomization to read the files as they are"
    )]
    Kustomization {
        /// The directory given.
        dir: PathBuf,
        /// The kustomization file found below it.
        file: PathBuf,
    },
}

/// File names kustomize reads as a kustomization.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The arguments that name one input and say how to report it, shared by every command
/// that reads one.
#[derive(Debug, clap::Args)]
pub(crate) struct InputArgs {
    /// Manifest files or directories (every .yaml/.yml below), `-` for stdin. Together they form one input.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Bind the workloads in PATH to cluster NAME (repeatable).
    #[arg(long = "cluster", value_name = "NAME=PATH")]
    pub(crate) clusters: Vec<ClusterPath>,
    /// Read a directory that holds a kustomization file by file anyway, ignoring the kustomization.
    #[arg(long)]
    pub(crate) ignore_kustomization: bool,
    /// Turn warnings into errors (exit 1).
    #[arg(long)]
    pub(crate) strict: bool,
    /// List every skipped object and every warning one by one, not one line per kind.
    #[arg(long, short, conflicts_with = "quiet")]
    pub(crate) verbose: bool,
    /// Hide notes (skipped objects, what is parsed but not modelled).
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

impl InputArgs {
    /// Reads the input these arguments name.
    pub(crate) fn read(&self) -> Result<Input, InputError> {
        read_input(&self.paths, &self.clusters, self.ignore_kustomization)
    }

    /// Reads and loads the input; with `--strict`, warnings are errors.
    pub(crate) fn load(&self) -> Result<(Input, Loaded), InputError> {
        let input = self.read()?;
        let loaded = load(&input);
        Ok((input, if self.strict { loaded.strict() } else { loaded }))
    }

    /// What the load found, as every command prints it on stderr: errors and warnings
    /// with their source line, then one line per kind of skipped object or repeated
    /// warning (each one with `--verbose`); notes hidden with `--quiet`.
    pub(crate) fn report(&self, input: &Input, diagnostics: &Diagnostics) -> String {
        let shown = |d: &&Diagnostic| !(self.quiet && d.severity == Severity::Note);
        if self.verbose {
            let all: Vec<Diagnostic> = diagnostics.iter().filter(shown).cloned().collect();
            return render(input, &all);
        }
        let (single, summaries) = diagnostics.summarised();
        let single: Vec<Diagnostic> = single.into_iter().filter(shown).cloned().collect();
        let mut out = render(input, &single);
        let lines: Vec<String> = summaries
            .iter()
            .filter(|s| !(self.quiet && s.severity == Severity::Note))
            .map(ToString::to_string)
            .collect();
        if !lines.is_empty() {
            out.push_str(&lines.join("\n"));
            out.push_str("\n(--verbose lists each one)\n");
        }
        out
    }
}

/// A `--cluster NAME=PATH` argument.
#[derive(Clone, Debug)]
pub(crate) struct ClusterPath {
    /// The cluster's name.
    pub(crate) cluster: String,
    /// Where its workloads are.
    pub(crate) path: PathBuf,
}

impl FromStr for ClusterPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(Self {
                cluster: name.to_owned(),
                path: PathBuf::from(path),
            }),
            _ => Err(format!(
                "`{s}` is not NAME=PATH (e.g. --cluster prod=k8s/prod/)"
            )),
        }
    }
}

fn read_text(path: &Path) -> Result<String, InputError> {
    let bytes = fs::read(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| InputError::NotText(path.to_owned()))
}

/// The manifest files of `path`: itself, or every `.yaml`/`.yml` below it in name order.
/// A directory holding a kustomization anywhere below it is refused unless
/// `ignore_kustomization`.
fn manifest_files(path: &Path, ignore_kustomization: bool) -> Result<Vec<PathBuf>, InputError> {
    let meta = fs::metadata(path).map_err(|source| InputError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|source| InputError::Read {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| InputError::Read {
                path: dir.clone(),
                source,
            })?;
            let p = entry.path();
            let file_type = entry.file_type().map_err(|source| InputError::Read {
                path: p.clone(),
                source,
            })?;
            let kustomization = entry
                .file_name()
                .to_str()
                .is_some_and(|n| KUSTOMIZATION_FILES.contains(&n));
            if kustomization && !ignore_kustomization {
                return Err(InputError::Kustomization {
                    dir: path.to_owned(),
                    file: p,
                });
            }
            if file_type.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(InputError::EmptyDirectory(path.to_owned()));
    }
    out.sort();
    Ok(out)
}

fn sources_of(path: &Path, ignore_kustomization: bool) -> Result<Vec<SourceFile>, InputError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| InputError::Read {
                path: path.to_owned(),
                source,
            })?;
        return Ok(vec![SourceFile::new("-", text)]);
    }
    manifest_files(path, ignore_kustomization)?
        .into_iter()
        .map(|f| Ok(SourceFile::new(f.display().to_string(), read_text(&f)?)))
        .collect()
}

/// Calibration paths named by Environments in `source`, resolved against its directory.
fn calibration_refs(source: &SourceFile) -> Vec<PathBuf> {
    if !source.text.contains("calibration:") {
        return Vec::new();
    }
    let (docs, _) = plinth_model::yaml::parse_documents(source);
    let base = Path::new(&*source.name)
        .parent()
        .unwrap_or_else(|| Path::new("."));
    docs.iter()
        .filter(|d| d.value.get("kind").and_then(|k| k.as_str()) == Some("Environment"))
        .filter_map(|d| {
            d.value
                .pointer("/spec/calibration")
                .and_then(|c| c.as_str())
        })
        .map(|c| base.join(c))
        .collect()
}

/// The identity of a source for de-duplication: its canonical path (stdin is `-`).
fn identity(source: &SourceFile) -> PathBuf {
    let path = Path::new(&*source.name);
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Reads every path (and `--cluster` binding) into one input. A file reached twice —
/// `dir` and `dir/file`, or a positional path also given to `--cluster` — is read once;
/// the `--cluster` binding wins.
fn read_input(
    paths: &[PathBuf],
    clusters: &[ClusterPath],
    ignore_kustomization: bool,
) -> Result<Input, InputError> {
    let mut input = Input::default();
    let mut bound = Vec::new();
    for binding in clusters {
        for s in sources_of(&binding.path, ignore_kustomization)? {
            bound.push((identity(&s), s, binding.cluster.clone()));
        }
    }
    let mut seen: std::collections::BTreeSet<PathBuf> =
        bound.iter().map(|(id, _, _)| id.clone()).collect();
    for path in paths {
        for s in sources_of(path, ignore_kustomization)? {
            if seen.insert(identity(&s)) {
                input.add(s);
            }
        }
    }
    for (_, s, cluster) in bound {
        input.add_bound(s, cluster);
    }
    let refs: Vec<PathBuf> = input.sources.iter().flat_map(calibration_refs).collect();
    for path in refs {
        if !input.sources.iter().any(|s| Path::new(&*s.name) == path) {
            input.add(SourceFile::new(
                path.display().to_string(),
                read_text(&path)?,
            ));
        }
    }
    Ok(input)
}
