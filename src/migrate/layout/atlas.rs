//! Atlas (`ariga.io/atlas/sql/migrate`, its `dir.go` and `lex.go`): `<version>_<name>.sql`
//! files (`<version>.sql` when created without a name), each a migration without a down, and
//! the `atlas.sum` integrity file beside them, whose presence says the directory is Atlas's.
//!
//! `atlas.sum` is verified as Atlas's `Validate` verifies it, before anything runs: the same
//! files (every `*.sql` directly in the directory, in name order), the same chained hash, the
//! same first mismatch reported with Atlas's words. Atlas's directives are read where Atlas
//! reads them: `atlas:txmode` and `atlas:checkpoint` among the comments at the top of a file
//! that a blank line separates from its statements, `-- atlas:delimiter` on its first line,
//! `atlas:sum ignore` on its first line.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{
    numbered_sql_file, strip_suffix_ignore_case, version_of, Checks, Claim, Def, DirProblem, Entry,
    Kind, Layout, Listed, New, Problem, Role, Settings, Whole,
};

pub(super) const DEF: Def = Def {
    layout: Layout::Atlas,
    needs_own_file: true,
    own_files: &[SUM_FILE],
    claim,
    marked: None,
    sections: None,
    settings: None,
    template,
};

pub(super) const CHECKS: Checks = Checks {
    layout: Layout::Atlas,
    own: SUM_FILE,
    reads: hashed,
    whole: validate,
    rewrite: Some(sum_file),
    directives: Some(directives),
    no_downs: Some("Atlas's versioned migrations have no down files; undo it with a new migration"),
};

/// Atlas's `HashFileName`.
const SUM_FILE: &str = "atlas.sum";

/// What Atlas tells the user to run after a checksum error.
const REHASH: &str = "run `atlas migrate hash` to re-hash the directory";

/// Whether Atlas hashes (and runs) file `name`: `LocalDir.Files` globs `*.sql`, whose extension
/// is matched in lower case only.
fn hashed(name: &str) -> bool {
    name.ends_with(".sql")
}

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let Entry::File(file) = entry else {
        return None;
    };
    let stem = strip_suffix_ignore_case(file, ".sql")?;
    if file.starts_with('.')
        || strip_suffix_ignore_case(stem, ".up").is_some()
        || strip_suffix_ignore_case(stem, ".down").is_some()
    {
        return None;
    }
    if !hashed(file) {
        return Some(Err(
            "Atlas reads only names ending in `.sql` in lower case: it neither hashes nor runs this file".into(),
        ));
    }
    // `atlas migrate diff` without a name writes `<version>.sql`.
    if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) {
        return Some(version_of(stem).map(|version| Claim {
            version: Some(version),
            version_text: stem.to_owned(),
            name: String::new(),
            files: vec![(file.to_owned(), Role::Script(Kind::Irreversible))],
        }));
    }
    numbered_sql_file(entry, Role::Script(Kind::Irreversible))
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    vec![(format!("{}_{}.sql", new.stamp, new.name), new.up_comment())]
}

/// Atlas's `NewHashFile`: one SHA-256 runs over every file's name and bytes in order, and a
/// file's entry is that hash's state after the file, so an entry covers its file and every file
/// before it. A file whose first line says `atlas:sum ignore` adds its name, not its bytes, and
/// has no entry.
fn entries(files: &Listed<'_>) -> Vec<(String, String)> {
    let mut hash = Sha256::new();
    let mut out = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        hash.update(name.as_bytes());
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        if matches!(
            directive(&String::from_utf8_lossy(first)),
            Some((_, "sum", "ignore"))
        ) {
            continue;
        }
        hash.update(bytes);
        out.push(((*name).to_owned(), base64(&hash.clone().finalize())));
    }
    out
}

/// Atlas's `HashFile.Sum`: the SHA-256 of every entry's name and hash, the sum's first line.
fn total(entries: &[(String, String)]) -> String {
    let mut hash = Sha256::new();
    for (name, h) in entries {
        hash.update(name.as_bytes());
        hash.update(h.as_bytes());
    }
    base64(&hash.finalize())
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Atlas's `HashFile.MarshalText`: the `atlas.sum` that `atlas migrate hash` writes for
/// `files` (name and bytes, in name order).
fn sum_file(files: &Listed<'_>) -> String {
    let entries = entries(files);
    let mut text = format!("h1:{}\n", total(&entries));
    for (name, hash) in &entries {
        text.push_str(&format!("{name} h1:{hash}\n"));
    }
    text
}

/// Atlas's `Validate`: the sum file against the files `reads` chose. No sum file is fine only
/// while there are no migration files.
fn validate(own: Option<&[u8]>, files: &Listed<'_>) -> Whole {
    let problems = match own {
        None if files.is_empty() => Vec::new(),
        None => vec![DirProblem {
            line: None,
            message: format!(
                "checksum file not found: an Atlas directory keeps its files' sums there; {REHASH}"
            ),
        }],
        Some(text) => verify(text, files).err().into_iter().collect(),
    };
    Whole {
        requires: None,
        problems,
    }
}

/// The first difference between the sum file and the files, as Atlas reports it.
fn verify(text: &[u8], files: &Listed<'_>) -> Result<(), DirProblem> {
    let recorded = parse(text)?;
    let computed = entries(files);
    if total(&recorded) == total(&computed) {
        return Ok(());
    }
    let mismatch = |line: usize, file: &str, reason: &str| {
        DirProblem {
        line: Some(line),
        message: format!(
            "checksum mismatch: {file} was {reason} since atlas.sum was written; if the change is intended, {REHASH}"
        ),
    }
    };
    // The first entry that differs says which file, and how: its name is gone (removed), at
    // its place (edited), or elsewhere (another file was added before it).
    for (i, (name, hash)) in recorded.iter().enumerate() {
        let line = i + 2;
        match computed.get(i) {
            Some((n, h)) if n == name && h == hash => continue,
            _ => {}
        }
        return Err(match computed.iter().position(|(n, _)| n == name) {
            None => mismatch(line, name, "removed"),
            Some(at) if at == i => mismatch(line, name, "edited"),
            Some(_) => {
                let added = computed.get(i).map_or(name.as_str(), |(n, _)| n.as_str());
                mismatch(line, added, "added")
            }
        });
    }
    let added = computed
        .get(recorded.len())
        .map_or("a file", |(n, _)| n.as_str());
    Err(mismatch(recorded.len() + 2, added, "added"))
}

/// Atlas's `HashFile.UnmarshalText`: lines as Go's `bufio.ScanLines` cuts them, the first the
/// sum of the others, each other `<name> h1:<hash>`.
fn parse(text: &[u8]) -> Result<Vec<(String, String)>, DirProblem> {
    let text = String::from_utf8_lossy(text);
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut lines = lines.into_iter().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let sum = first.strip_prefix("h1:").unwrap_or(first);
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        let Some((name, hash)) = line.split_once("h1:") else {
            return Err(DirProblem {
                line: Some(i + 2),
                message: format!(
                    "checksum file format invalid: expected `<file> h1:<hash>`; {REHASH}"
                ),
            });
        };
        entries.push((name.trim().to_owned(), hash.to_owned()));
    }
    if sum != total(&entries) {
        return Err(DirProblem {
            line: Some(1),
            message: format!(
                "checksum mismatch: the sum on the first line does not match the lines below it (atlas.sum was edited by hand); {REHASH}"
            ),
        });
    }
    Ok(entries)
}

/// Atlas's directive pattern `^([ -~]*)atlas:(\w+)(?: +(.+))*`, matched as Go's regexp matches
/// it at the start of `text` (within its first line): the prefix, the name and the argument.
fn directive(text: &str) -> Option<(&str, &str, &str)> {
    let line = text.split('\n').next().unwrap_or_default();
    let printable = line
        .bytes()
        .take_while(|b| (b' '..=b'~').contains(b))
        .count();
    let head = &line[..printable];
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    // `[ -~]*` is greedy: the last `atlas:` that a word character follows.
    let mut end = head.len();
    let at = loop {
        let p = head[..end].rfind("atlas:")?;
        if head.as_bytes().get(p + 6).copied().is_some_and(is_word) {
            break p;
        }
        end = p;
    };
    let rest = &line[at + 6..];
    let (name, after) = rest.split_at(rest.bytes().take_while(|b| is_word(*b)).count());
    let spaces = after.bytes().take_while(|b| *b == b' ').count();
    // ` +(.+)`: the rest of the line after the spaces; a line that ends in spaces gives `.+`
    // the last of them.
    let arg = match (spaces, after.len()) {
        (0, _) => "",
        (s, len) if s < len => &after[s..],
        (s, _) if s >= 2 => &after[s - 1..],
        _ => "",
    };
    Some((&line[..at], name, arg))
}

/// Atlas's `LocalFile.comments`: the comment lines (`#` or `--`) at the top of the file,
/// trimmed, when a blank line (or the end of the file) separates them from what follows;
/// otherwise none, since they belong to the first statement.
fn file_comments(text: &str) -> Vec<&str> {
    let mut comments = Vec::new();
    let mut content = text;
    while content.starts_with('#') || content.starts_with("--") {
        let Some(end) = content.find('\n') else {
            comments.push(content);
            break;
        };
        comments.push(content[..end].trim());
        content = &content[end + 1..];
    }
    if !content.trim_start_matches([' ', '\t']).starts_with('\n') && !content.is_empty() {
        return Vec::new();
    }
    comments
}

/// The directives Atlas reads in a migration file's text as written. `txmode none` runs the
/// file outside a transaction (`file`, the default, inside one); a custom delimiter and a
/// checkpoint are refused, since shipgate would run such a file differently from Atlas.
/// `nolint`, `lint` and other names are for Atlas's linter or unknown to its runner: ignored,
/// as Atlas's runner ignores them.
fn directives(text: &str) -> Result<Settings, Problem> {
    // Atlas's scanner reads the delimiter on the first line, whatever follows it.
    if let Some(("-- ", "delimiter", delimiter)) = directive(text) {
        return Err(Problem {
            line: 1,
            message: format!(
                "`-- atlas:delimiter {delimiter}` makes Atlas end statements with `{delimiter}` instead of `;`; shipgate finds statements by the database's own rules and does not read Atlas's delimiter: remove the directive and end each statement with `;` (on MySQL/MariaDB a routine body goes between `DELIMITER` lines)"
            ),
        });
    }
    let mut modes = Vec::new();
    for (i, comment) in file_comments(text).into_iter().enumerate() {
        match directive(comment) {
            Some((_, "txmode", mode)) => modes.push((i + 1, mode)),
            Some((_, "checkpoint", _)) => {
                return Err(Problem {
                    line: i + 1,
                    message: "`atlas:checkpoint` marks an Atlas checkpoint, a snapshot Atlas runs instead of the files before it on an empty database and skips elsewhere; shipgate runs every file in version order and has no checkpoints: remove the checkpoint file from the directory shipgate reads".into(),
                })
            }
            _ => {}
        }
    }
    match modes.as_slice() {
        [] | [(_, "file")] => Ok(Settings::default()),
        [(_, "none")] => Ok(Settings {
            no_transaction: true,
        }),
        [(line, "all")] => Err(Problem {
            line: *line,
            message: "txmode \"all\" is not allowed in a file directive (Atlas refuses it too): use `-- atlas:txmode file`, or none".into(),
        }),
        [(line, mode)] => Err(Problem {
            line: *line,
            message: format!("unknown txmode \"{mode}\" (Atlas knows `none` and `file`)"),
        }),
        [_, (line, _), ..] => Err(Problem {
            line: *line,
            message: "more than one `atlas:txmode` directive (Atlas refuses such a file): keep one".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two migrations and the `atlas.sum` for them, computed by an independent implementation
    /// of Atlas's `NewHashFile` (Python's hashlib, following `sql/migrate/dir.go`), and
    /// checked against sums real `atlas migrate hash` wrote (bench/realworld.md).
    const A: &[(&str, &str)] = &[
        ("20240101000000_a.sql", "CREATE TABLE a (id integer);\n"),
        (
            "20240102000000_b.sql",
            "CREATE TABLE b (id integer);\nINSERT INTO b VALUES (1);\n",
        ),
    ];
    const A_SUM: &str = "h1:jRAyXCLOABHgQRdl3XfUl2WjZNSz2Lc/pfxov28ciF8=\n\
        20240101000000_a.sql h1:zapeE87YmKkD0QPtdReWF8o5JMYsDuga9kcUVOcU0IY=\n\
        20240102000000_b.sql h1:it6ZV31suEStHUeIY1zsGOTU6s3hd4x8NgHqF3zpz2E=\n";

    fn bytes<'a>(files: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        files.iter().map(|(n, t)| (*n, t.as_bytes())).collect()
    }

    fn problems(sum: &str, files: &[(&str, &str)]) -> Vec<(Option<usize>, String)> {
        validate(Some(sum.as_bytes()), &bytes(files))
            .problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn writes_the_sum_atlas_writes() {
        assert_eq!(sum_file(&bytes(A)), A_SUM);
        // `atlas:sum ignore` on the first line: the name counts, the bytes and the entry not.
        let ignored = [
            ("1_a.sql", "-- atlas:sum ignore\nSELECT 1;\n"),
            ("2_b.sql", "SELECT 2;\n"),
        ];
        assert_eq!(
            sum_file(&bytes(&ignored)),
            "h1:LemDmSBUiDaRH/NAP3RlrjFXjFJseuPevYKjCpYastc=\n\
             2_b.sql h1:mXBwCRIIpqxqyyHCqRD99EypyNOrsu5PWwGyoC5w93A=\n"
        );
        assert_eq!(sum_file(&[]), format!("h1:{}\n", total(&[])));
    }

    #[test]
    fn a_valid_sum_passes_in_any_line_ending() {
        assert!(problems(A_SUM, A).is_empty());
        assert!(problems(&A_SUM.replace('\n', "\r\n"), A).is_empty());
        assert!(problems(A_SUM.trim_end(), A).is_empty());
        assert!(validate(None, &[]).problems.is_empty());
    }

    #[test]
    fn names_the_first_file_that_differs_as_atlas_does() {
        let edited = [
            A[0],
            ("20240102000000_b.sql", "CREATE TABLE b (id bigint);\n"),
        ];
        let added = [A[0], A[1], ("20240103000000_c.sql", "SELECT 3;\n")];
        let inserted = [A[0], ("20240101500000_x.sql", "SELECT 3;\n"), A[1]];
        type Case<'a> = (&'a [(&'a str, &'a str)], usize, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &edited,
                3,
                "checksum mismatch: 20240102000000_b.sql was edited",
            ),
            (
                &added,
                4,
                "checksum mismatch: 20240103000000_c.sql was added",
            ),
            (
                &inserted,
                3,
                "checksum mismatch: 20240101500000_x.sql was added",
            ),
            (
                &A[1..],
                2,
                "checksum mismatch: 20240101000000_a.sql was removed",
            ),
            (
                &A[..1],
                3,
                "checksum mismatch: 20240102000000_b.sql was removed",
            ),
        ];
        for (files, line, want) in cases {
            let got = problems(A_SUM, files);
            assert_eq!(got.len(), 1, "{files:?}: {got:?}");
            assert_eq!(got[0].0, Some(*line), "{files:?}");
            assert!(got[0].1.starts_with(want), "{got:?}, want {want:?}");
            assert!(got[0].1.contains("atlas migrate hash"), "{got:?}");
        }
    }

    #[test]
    fn refuses_a_sum_file_edited_by_hand_or_missing() {
        let swapped = A_SUM.replace("zapeE87", "ZapeE87");
        assert_eq!(problems(&swapped, A)[0].0, Some(1));
        assert!(problems(&swapped, A)[0].1.contains("first line"));
        let broken = A_SUM.replace("20240101000000_a.sql h1:", "20240101000000_a.sql ");
        let got = problems(&broken, A);
        assert_eq!(got[0].0, Some(2));
        assert!(
            got[0].1.starts_with("checksum file format invalid"),
            "{got:?}"
        );
        let missing = validate(None, &bytes(A)).problems;
        assert_eq!(missing.len(), 1);
        assert!(missing[0].message.starts_with("checksum file not found"));
    }

    #[test]
    fn matches_directives_as_gos_regexp_does() {
        type Parts<'a> = Option<(&'a str, &'a str, &'a str)>;
        let cases: &[(&str, Parts<'_>)] = &[
            ("-- atlas:txmode none", Some(("-- ", "txmode", "none"))),
            ("# atlas:txmode none", Some(("# ", "txmode", "none"))),
            (
                "--atlas:sum ignore\nSELECT 1;",
                Some(("--", "sum", "ignore")),
            ),
            ("-- atlas:nolint", Some(("-- ", "nolint", ""))),
            (
                "-- atlas:delimiter \\n\\n",
                Some(("-- ", "delimiter", "\\n\\n")),
            ),
            ("-- atlas:txmode  none ", Some(("-- ", "txmode", "none "))),
            ("-- atlas:txmode   ", Some(("-- ", "txmode", " "))),
            ("-- atlas:sum ignore\r\n", Some(("-- ", "sum", "ignore\r"))),
            (
                "-- atlas:x atlas:txmode none",
                Some(("-- atlas:x ", "txmode", "none")),
            ),
            ("-- atlas: none", None),
            ("\t-- atlas:txmode none", None),
            ("SELECT 1;\n-- atlas:txmode none", None),
        ];
        for (text, want) in cases {
            assert_eq!(directive(text), *want, "{text:?}");
        }
    }

    #[test]
    fn reads_file_directives_only_above_a_blank_line() {
        let cases: &[(&str, Result<bool, usize>)] = &[
            (
                "-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
                Ok(true),
            ),
            ("# atlas:txmode none\n-- more\n  \nSELECT 1;\n", Ok(true)),
            ("-- atlas:txmode none\n", Ok(true)),
            ("-- atlas:txmode file\n\nSELECT 1;\n", Ok(false)),
            // Attached to the statement, or in a file written with CRLF: Atlas ignores it.
            ("-- atlas:txmode none\nSELECT 1;\n", Ok(false)),
            ("-- atlas:txmode none\r\n\r\nSELECT 1;\r\n", Ok(false)),
            ("-- atlas:txmode none", Ok(false)),
            ("\u{feff}-- atlas:txmode none\n\nSELECT 1;\n", Ok(false)),
            ("-- atlas:nolint destructive\n\nDROP TABLE t;\n", Ok(false)),
            ("-- atlas:txmode all\n\nSELECT 1;\n", Err(1)),
            ("-- c\n-- atlas:txmode nope\n\nSELECT 1;\n", Err(2)),
            (
                "-- atlas:txmode none\n-- atlas:txmode file\n\nSELECT 1;\n",
                Err(2),
            ),
            ("-- atlas:checkpoint\n\nCREATE TABLE t (a int);\n", Err(1)),
            (
                "-- atlas:delimiter -- end\nCREATE PROCEDURE p() BEGIN SELECT 1; END -- end\n",
                Err(1),
            ),
        ];
        for (text, want) in cases {
            let got = directives(text)
                .map(|s| s.no_transaction)
                .map_err(|p| p.line);
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn claims_what_atlas_runs() {
        let claimed = |name: &str| claim(Entry::File(name));
        let c = claimed("20230730144426.sql")
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            (c.version, c.name.as_str()),
            (Some(super::super::Version::from_int(20230730144426)), "")
        );
        let c = claimed("2_add_x.sql").expect("claimed").expect("valid");
        assert_eq!(c.name, "add_x");
        assert!(claimed("3_c.SQL").expect("claimed").is_err());
        assert_eq!(claimed("1_a.up.sql"), None);
        assert_eq!(claimed("atlas.sum"), None);
    }
}
