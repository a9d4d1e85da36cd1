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
    /// A path is not a regular file (a FIFO, a device, a socket).
    #[error(
        "`{0}` is not a regular file: Plinth reads manifests only from files, directories and `-` (standard input)"
    )]
    NotRegular(PathBuf),
    /// The input is larger than the cap.
    #[error(
        "the input is larger than {limit_mib} MiB (at `{path}`): pass --max-input-mib to raise the limit"
    )]
    TooLarge {
        /// The source that went over the cap.
        path: PathBuf,
        /// The cap, MiB.
        limit_mib: u64,
    },
    /// A path inside a manifest leaves the directory of the file that names it.
    #[error(
        "`calibration: {named}` in `{file}` resolves to `{path}`, outside `{dir}`: copy the Calibration beside the Environment, or pass --allow-outside-paths"
    )]
    Outside {
        /// The path as written.
        named: String,
        /// The manifest that names it.
        file: PathBuf,
        /// Where it resolves.
        path: PathBuf,
        /// The directory it must stay in.
        dir: PathBuf,
    },
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
    /// Most MiB read for one input, every file and standard input together.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_INPUT_MIB, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub(crate) max_input_mib: u64,
    /// Let `calibration:` name a file outside the directory of the Environment that names it.
    #[arg(long)]
    pub(crate) allow_outside_paths: bool,
}

/// Default of `--max-input-mib`: far above any real estate's manifests.
pub(crate) const DEFAULT_MAX_INPUT_MIB: u64 = 64;

/// What an input may still read: the rest of `--max-input-mib`.
struct Budget {
    left: u64,
    limit_mib: u64,
}

impl Budget {
    /// Reads `reader` to its end within the budget; `path` names it in errors.
    fn read(&mut self, reader: impl Read, path: &Path) -> Result<String, InputError> {
        let mut bytes = Vec::new();
        reader
            .take(self.left.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| InputError::Read {
                path: path.to_owned(),
                source,
            })?;
        let used = bytes.len() as u64;
        if used > self.left {
            return Err(InputError::TooLarge {
                path: path.to_owned(),
                limit_mib: self.limit_mib,
            });
        }
        self.left -= used;
        String::from_utf8(bytes).map_err(|_| InputError::NotText(path.to_owned()))
    }

    /// Reads the regular file at `path` within the budget; anything else is refused
    /// before it is opened, so a FIFO or a device can neither block nor flood the read.
    fn read_file(&mut self, path: &Path) -> Result<String, InputError> {
        let meta = fs::metadata(path).map_err(|source| InputError::Read {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(InputError::NotRegular(path.to_owned()));
        }
        let file = fs::File::open(path).map_err(|source| InputError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.read(file, path)
    }
}

impl InputArgs {
    /// Reads the input these arguments name.
    pub(crate) fn read(&self) -> Result<Input, InputError> {
        let mut budget = Budget {
            left: self.max_input_mib.saturating_mul(1 << 20),
            limit_mib: self.max_input_mib,
        };
        read_input(self, &mut budget)
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

fn sources_of(
    path: &Path,
    ignore_kustomization: bool,
    budget: &mut Budget,
) -> Result<Vec<SourceFile>, InputError> {
    if path == Path::new("-") {
        let text = budget.read(std::io::stdin().lock(), path)?;
        return Ok(vec![SourceFile::new("-", text)]);
    }
    manifest_files(path, ignore_kustomization)?
        .into_iter()
        .map(|f| {
            Ok(SourceFile::new(
                f.display().to_string(),
                budget.read_file(&f)?,
            ))
        })
        .collect()
}

/// A `calibration:` path as an Environment in `file` writes it.
struct CalibrationRef {
    /// The manifest that names it.
    file: PathBuf,
    /// The path as written.
    named: String,
}

impl CalibrationRef {
    /// The directory the path resolves against and must stay in: the naming file's
    /// (the working directory for standard input).
    fn base(&self) -> PathBuf {
        let dir = match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() && self.file != Path::new("-") => p,
            _ => Path::new("."),
        };
        fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
    }

    /// The path as messages show it: joined to the naming file's directory as written.
    fn shown(&self) -> PathBuf {
        self.file
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(&self.named)
    }

    /// Where the path leads, checked to stay below [`Self::base`] unless `allow_outside`.
    fn resolve(&self, allow_outside: bool) -> Result<PathBuf, InputError> {
        let base = self.base();
        let joined = base.join(&self.named);
        let path = fs::canonicalize(&joined).map_err(|source| InputError::Read {
            path: joined.clone(),
            source,
        })?;
        if allow_outside || path.starts_with(&base) {
            Ok(path)
        } else {
            Err(InputError::Outside {
                named: self.named.clone(),
                file: self.file.clone(),
                path,
                dir: base,
            })
        }
    }
}

/// Calibration paths named by Environments in `source`.
fn calibration_refs(source: &SourceFile) -> Vec<CalibrationRef> {
    if !source.text.contains("calibration:") {
        return Vec::new();
    }
    let (docs, _) = plinth_model::yaml::parse_documents(source);
    docs.iter()
        .filter(|d| d.value.get("kind").and_then(|k| k.as_str()) == Some("Environment"))
        .filter_map(|d| {
            d.value
                .pointer("/spec/calibration")
                .and_then(|c| c.as_str())
        })
        .map(|c| CalibrationRef {
            file: PathBuf::from(&*source.name),
            named: c.to_owned(),
        })
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
fn read_input(args: &InputArgs, budget: &mut Budget) -> Result<Input, InputError> {
    let ignore_kustomization = args.ignore_kustomization;
    let mut input = Input::default();
    let mut bound = Vec::new();
    for binding in &args.clusters {
        for s in sources_of(&binding.path, ignore_kustomization, budget)? {
            bound.push((identity(&s), s, binding.cluster.clone()));
        }
    }
    let mut seen: std::collections::BTreeSet<PathBuf> =
        bound.iter().map(|(id, _, _)| id.clone()).collect();
    for path in &args.paths {
        for s in sources_of(path, ignore_kustomization, budget)? {
            if seen.insert(identity(&s)) {
                input.add(s);
            }
        }
    }
    for (_, s, cluster) in bound {
        input.add_bound(s, cluster);
    }
    let refs: Vec<CalibrationRef> = input.sources.iter().flat_map(calibration_refs).collect();
    for r in refs {
        let path = r.resolve(args.allow_outside_paths)?;
        if !input.sources.iter().any(|s| identity(s) == path) {
            let text = budget.read_file(&path)?;
            input.add(SourceFile::new(r.shown().display().to_string(), text));
        }
    }
    Ok(input)
}
