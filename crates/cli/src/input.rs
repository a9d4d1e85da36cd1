//! Reading an input from the command line: files, directories (every `.yaml`/`.yml` below
//! them, in name order) and `-` for stdin, plus `--cluster NAME=PATH` bindings and the
//! Calibration file an Environment names.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use plinth_model::{Input, SourceFile};

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
}

/// The arguments that name one input, shared by every command that reads one.
#[derive(Debug, clap::Args)]
pub(crate) struct InputArgs {
    /// Manifest files or directories (every .yaml/.yml below), `-` for stdin. Together they form one input.
    #[arg(required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Bind the workloads in PATH to cluster NAME (repeatable).
    #[arg(long = "cluster", value_name = "NAME=PATH")]
    pub(crate) clusters: Vec<ClusterPath>,
}

impl InputArgs {
    /// Reads the input these arguments name.
    pub(crate) fn read(&self) -> Result<Input, InputError> {
        read_input(&self.paths, &self.clusters)
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
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
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

fn sources_of(path: &Path) -> Result<Vec<SourceFile>, InputError> {
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
    manifest_files(path)?
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
pub(crate) fn read_input(paths: &[PathBuf], clusters: &[ClusterPath]) -> Result<Input, InputError> {
    let mut input = Input::default();
    let mut bound = Vec::new();
    for binding in clusters {
        for s in sources_of(&binding.path)? {
            bound.push((identity(&s), s, binding.cluster.clone()));
        }
    }
    let mut seen: std::collections::BTreeSet<PathBuf> =
        bound.iter().map(|(id, _, _)| id.clone()).collect();
    for path in paths {
        for s in sources_of(path)? {
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
