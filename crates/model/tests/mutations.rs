//! Random mutations of the bundled examples must never make the loader panic, and a
//! rejected input must say why at a line of one of its files. 64 cases by default;
//! `PROPTEST_CASES` overrides. A failure prints the seed and the minimal mutation list.

mod common;

use proptest::prelude::*;
use proptest::test_runner::Config;

use plinth_model::load;

/// Values swapped in for a scalar: other types, huge and odd numbers, odd text.
const SWAPS: &[&str] = &[
    "42",
    "-1",
    "0",
    "1.5",
    "\"a string\"",
    "plain words",
    "[1, 2, 3]",
    "[]",
    "{a: 1}",
    "{}",
    "null",
    "~",
    "true",
    "",
    "1e400",
    "-1e400",
    "99999999999999999999",
    "-99999999999999999999",
    "1.7976931348623157e308",
    "0x",
    "0xffffffffffffffffff",
    ".nan",
    "'1.30'",
    "9999999999999Ti",
    "1e400Gi",
    "-5Gi",
    "\"\\u202eevil\"",
    "ｒｅｐｌｉｃａｓ",
    "🦀🦀🦀",
    "*undefined",
    "&anchor x",
    "!!binary aGVsbG8=",
];

/// Text inserted into a line.
const ODD: &[&str] = &[
    "\u{202e}",
    "\u{feff}",
    "\u{0}",
    "\u{7}",
    "\t",
    "\r",
    "é",
    "e\u{301}",
    "𝕜𝕚𝕟𝕕",
    "🦀",
    "\u{fffd}",
    "\u{2028}",
    "\u{85}",
    ": ",
    "- ",
    "#",
    "{",
    "]",
    "'",
    "\"",
    "&a ",
    "*a ",
    "? ",
    "---\n",
    "...\n",
];

/// A position in a collection of any length: a fraction of it, in 1/2^32 steps.
#[derive(Clone, Copy, Debug)]
struct Pick(u32);

impl Pick {
    fn index(self, len: usize) -> usize {
        ((u64::from(self.0) * len as u64) >> 32) as usize
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(Pick),
    DuplicateLine(Pick),
    SwapScalar(Pick, usize),
    RenameKey(Pick, Pick),
    InsertOdd(Pick, Pick, usize),
    Indent(Pick, usize),
    Truncate(Pick),
}

fn pick() -> impl Strategy<Value = Pick> {
    any::<u32>().prop_map(Pick)
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        pick().prop_map(Mutation::DeleteLine),
        pick().prop_map(Mutation::DuplicateLine),
        (pick(), 0..SWAPS.len()).prop_map(|(l, s)| Mutation::SwapScalar(l, s)),
        (pick(), pick()).prop_map(|(l, c)| Mutation::RenameKey(l, c)),
        (pick(), pick(), 0..ODD.len()).prop_map(|(l, c, s)| Mutation::InsertOdd(l, c, s)),
        (pick(), prop_oneof![1..8usize, 60..200usize]).prop_map(|(l, n)| Mutation::Indent(l, n)),
        pick().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary of `s` nearest below the `at`-th byte.
fn boundary(s: &str, at: Pick) -> usize {
    let mut i = at.index(s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match m {
        Mutation::DeleteLine(l) => {
            lines.remove(l.index(n));
        }
        Mutation::DuplicateLine(l) => {
            let i = l.index(n);
            lines.insert(i, lines[i].clone());
        }
        Mutation::SwapScalar(l, s) => {
            let line = &mut lines[l.index(n)];
            if let Some(colon) = line.find(": ") {
                line.truncate(colon + 2);
                line.push_str(SWAPS[*s]);
            } else if let Some(dash) = line.find("- ") {
                line.truncate(dash + 2);
                line.push_str(SWAPS[*s]);
            } else {
                line.push_str(SWAPS[*s]);
            }
        }
        Mutation::RenameKey(l, c) => {
            let line = &mut lines[l.index(n)];
            if let Some(colon) = line.find(':') {
                let key_start = line.len() - line.trim_start_matches([' ', '-']).len();
                if colon > key_start {
                    let at = boundary(&line[..colon], *c).max(key_start);
                    let mut end = at + 1;
                    while end < colon && !line.is_char_boundary(end) {
                        end += 1;
                    }
                    if end <= colon {
                        line.replace_range(at..end, "");
                    }
                }
            }
        }
        Mutation::InsertOdd(l, c, s) => {
            let line = &mut lines[l.index(n)];
            let at = boundary(line, *c);
            line.insert_str(at, ODD[*s]);
        }
        Mutation::Indent(l, k) => {
            let i = l.index(n);
            lines[i] = format!("{}{}", " ".repeat(*k), lines[i]);
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let cut = boundary(&joined, *at);
            return joined[..cut].to_owned();
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// One example input, one of its files chosen, and the mutations applied to that file.
fn case() -> impl Strategy<Value = (&'static str, Pick, Vec<Mutation>)> {
    (
        prop_oneof![Just("small"), Just("enterprise")],
        pick(),
        prop::collection::vec(mutation(), 1..6),
    )
}

proptest! {
    #![proptest_config(Config::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn mutated_examples_fail_with_located_errors((example, file, mutations) in case()) {
        let mut files = common::yaml_files(&common::example_dir(example));
        prop_assume!(!files.is_empty());
        let i = file.index(files.len());
        for m in &mutations {
            files[i].1 = apply(&files[i].1, m);
        }
        let input = common::input_of(&files);
        let loaded = load(&input);
        if let Err(why) = common::assert_located(&input, &loaded) {
            prop_assert!(false, "{why}\n--- {} after mutation:\n{}", files[i].0, files[i].1);
        }
    }
}

#[test]
fn unmutated_examples_load() {
    for example in ["small", "enterprise"] {
        let files = common::yaml_files(&common::example_dir(example));
        let loaded = load(&common::input_of(&files));
        assert!(
            loaded.estate.is_some(),
            "{example}:\n{}",
            loaded.diagnostics
        );
    }
}

#[test]
fn each_mutation_changes_the_text() {
    let text = "a: 1\nb:\n  - c: two\n";
    for m in [
        Mutation::DeleteLine(Pick(0)),
        Mutation::DuplicateLine(Pick(0)),
        Mutation::SwapScalar(Pick(0), 14),
        Mutation::RenameKey(Pick(0), Pick(0)),
        Mutation::InsertOdd(Pick(0), Pick(0), 0),
        Mutation::Indent(Pick(0), 3),
        Mutation::Truncate(Pick(u32::MAX / 2)),
    ] {
        assert_ne!(apply(text, &m), text, "{m:?}");
    }
}
