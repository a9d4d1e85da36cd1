//! Where a piece of input came from: a named text and positions inside it.

use std::fmt;
use std::sync::Arc;

/// One input text and the name it is reported under (a path, `-` for stdin, or
/// `<default>` for an embedded default document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The name errors are reported under.
    pub name: Arc<str>,
    /// The whole text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// A source named `name` holding `text`.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A position in a named source, 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The source's name.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

impl Location {
    /// A position in `file`.
    pub fn new(file: Arc<str>, line: u32, column: u32) -> Self {
        Self { file, line, column }
    }

    /// The start of `file`, for problems that belong to a whole input.
    pub fn start_of(file: Arc<str>) -> Self {
        Self {
            file,
            line: 1,
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}
