//! dbmate (`pkg/dbmate/migration.go`): `<version>_<name>.sql`, one file per migration with a
//! `-- migrate:up` section and a `-- migrate:down` section, read as dbmate reads them: a line
//! that starts `-- migrate:up` (case as written, at the start of the line) opens a block, whose
//! one `-- migrate:down` line opens its down section; only comments may precede the first
//! block; `transaction:false` after a marker runs that section outside a transaction. Since
//! dbmate 2.29 a file may hold several blocks, which are still one migration: their up
//! sections run in file order as its up script, their down sections in file order as its
//! down. The version is the digits before the first `_`.

use super::{
    cut_sections, numbered_sql_file, Claim, Def, Entry, Kind, Layout, New, Problem, Role, Section,
};

pub(super) const DEF: Def = Def {
    layout: Layout::Dbmate,
    needs_own_file: false,
    own_files: &[],
    claim,
    marked: Some(marked),
    sections: Some(sections),
    settings: None,
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    numbered_sql_file(entry, Role::Sections)
}

/// A dbmate marker on `line`: `--`, optional white space, `migrate:up`/`migrate:down`, then the
/// end of the line or white space and options. Matched a little more widely than dbmate does
/// (any case, leading white space), so that a file dbmate would reject is claimed and its
/// problem reported rather than read as another layout's.
fn loose_marker(line: &str) -> Option<Kind> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    for (word, kind) in [("migrate:up", Kind::Up), ("migrate:down", Kind::Down)] {
        if super::starts_with_ignore_case(rest, word)
            && rest[word.len()..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace)
        {
            return Some(kind);
        }
    }
    None
}

fn marked(text: &str) -> bool {
    text.lines().any(|line| loose_marker(line).is_some())
}

/// The marker as dbmate matches it (`^--\s*migrate:up(\s*$|\s+\S+)`), and its options.
fn exact_marker(line: &str) -> Option<(Kind, &str)> {
    let rest = line.strip_prefix("--")?.trim_start();
    for (word, kind) in [("migrate:up", Kind::Up), ("migrate:down", Kind::Down)] {
        if let Some(options) = rest.strip_prefix(word) {
            if options.is_empty() || options.starts_with(char::is_whitespace) {
                return Some((kind, options.trim()));
            }
        }
    }
    None
}

fn sections(text: &str) -> Result<Vec<Section>, Problem> {
    // Since dbmate 2.29 every `-- migrate:up` opens a block of its own, which must hold
    // exactly one `-- migrate:down`: `(up, down)` lines of each block.
    let mut blocks: Vec<(usize, Option<usize>)> = Vec::new();
    let mut down_before_up = None;
    let mut statement_before_up = None;
    let cut = cut_sections(text, |line_no, line| match exact_marker(line) {
        Some((Kind::Up, options)) => {
            blocks.push((line_no, None));
            Ok(Some((Kind::Up, no_transaction(options))))
        }
        Some((_, options)) => match blocks.last_mut() {
            None => {
                down_before_up.get_or_insert(line_no);
                Ok(None)
            }
            Some((up, Some(first))) => Err(Problem {
                line: line_no,
                message: format!(
                    "a second `-- migrate:down` in the block that `-- migrate:up` opens on \
                     line {up} (its down is on line {first}): dbmate refuses it; start another \
                     block with `-- migrate:up`"
                ),
            }),
            Some((_, down)) => {
                *down = Some(line_no);
                Ok(Some((Kind::Down, no_transaction(options))))
            }
        },
        None => {
            let bare = line.trim();
            if blocks.is_empty()
                && statement_before_up.is_none()
                && !bare.is_empty()
                && !bare.starts_with("--")
            {
                statement_before_up = Some(line_no);
            }
            Ok(None)
        }
    })?;
    if blocks.is_empty() {
        let line = text
            .lines()
            .position(|l| loose_marker(l) == Some(Kind::Up))
            .map_or(1, |i| i + 1);
        return Err(Problem {
            line,
            message: "no `-- migrate:up` line (written at the start of the line, in lower case, as dbmate requires): dbmate would refuse this file".into(),
        });
    }
    if let Some(line) = statement_before_up.or(down_before_up) {
        return Err(Problem {
            line,
            message: if Some(line) == statement_before_up {
                "a statement before `-- migrate:up`: dbmate does not run statements outside its sections; move it into one".into()
            } else {
                "`-- migrate:up` must come before `-- migrate:down` (dbmate requires it)".into()
            },
        });
    }
    if let Some((up, _)) = blocks.iter().find(|(_, down)| down.is_none()) {
        let line = if blocks.len() == 1 {
            text.lines().count().max(1)
        } else {
            *up
        };
        return Err(Problem {
            line,
            message: if blocks.len() == 1 {
                "no `-- migrate:down` section: dbmate requires one (leave it empty for a migration that cannot be reverted)".into()
            } else {
                format!(
                    "no `-- migrate:down` in the block that `-- migrate:up` opens on line {up}: \
                     dbmate requires one in every block (leave it empty for a block that cannot \
                     be reverted)"
                )
            },
        });
    }
    if blocks.len() == 1 {
        return Ok(cut);
    }
    // Several blocks are one migration: dbmate runs the up sections in file order on `up` and
    // the down sections in file order on `down`. Each kind becomes one script, its lines where
    // the file has them, run in one transaction unless its sections say otherwise.
    [Kind::Up, Kind::Down]
        .into_iter()
        .map(|kind| {
            let parts: Vec<&Section> = cut.iter().filter(|s| s.kind == kind).collect();
            let no_transaction = parts[0].no_transaction;
            if let Some(odd) = parts
                .iter()
                .position(|s| s.no_transaction != no_transaction)
            {
                let (up, down) = blocks[odd];
                let (line, which) = match kind {
                    Kind::Up => (up, "up"),
                    _ => (down.unwrap_or(up), "down"),
                };
                return Err(Problem {
                    line,
                    message: format!(
                        "the {which} sections of this file differ in `transaction:false`: dbmate \
                         runs each in a transaction of its own or none, shipgate runs a \
                         migration's {which} script one way; put the sections that run outside \
                         a transaction in a file of their own"
                    ),
                });
            }
            Ok(Section {
                kind,
                sql: overlay(parts.iter().map(|s| s.sql.as_str())),
                text: parts.iter().map(|s| s.text.as_str()).collect(),
                no_transaction,
            })
        })
        .collect()
}

/// Texts of equal line count (sections' `sql`, each blank outside its own lines) laid over
/// one another: each line is taken from the text that has it.
fn overlay<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut lines: Vec<_> = texts.map(|t| t.split_inclusive('\n')).collect();
    let mut out = String::new();
    loop {
        let row: Vec<&str> = lines.iter_mut().filter_map(Iterator::next).collect();
        if row.is_empty() {
            return out;
        }
        out.push_str(row.into_iter().max_by_key(|l| l.len()).unwrap_or_default());
    }
}

/// dbmate's options are `key:value` pairs; `transaction:false` is the one it reads.
fn no_transaction(options: &str) -> bool {
    options
        .split_whitespace()
        .any(|pair| pair.split(':').collect::<Vec<_>>() == ["transaction", "false"])
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    vec![(
        format!("{}_{}.sql", new.stamp, new.name),
        format!(
            "-- migrate:up\n{}\n-- migrate:down\n{}",
            new.up_comment(),
            new.down_comment()
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_up_and_down_with_their_options() {
        let text = "-- a header\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n";
        let s = sections(text).expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].kind, s[0].no_transaction), (Kind::Up, true));
        assert_eq!((s[1].kind, s[1].no_transaction), (Kind::Down, false));
        assert_eq!(
            s[0].sql,
            "-- a header\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n\n\n"
        );
        assert_eq!(s[1].text, "-- migrate:down\nDROP INDEX i;\n");
    }

    #[test]
    fn refuses_what_dbmate_refuses() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "SELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
                1,
                "before",
            ),
            (
                "-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 2;\n",
                2,
                "a statement before",
            ),
            (
                "-- migrate:down\n-- migrate:up\nSELECT 2;\n",
                1,
                "must come before",
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:down\n",
                4,
                "a second `-- migrate:down`",
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n",
                1,
                "in the block that `-- migrate:up` opens on line 1",
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up transaction:false\nSELECT 2;\n-- migrate:down\n",
                4,
                "differ in `transaction:false`",
            ),
            ("-- migrate:up\nSELECT 1;\n", 2, "no `-- migrate:down`"),
            (
                "-- Migrate:Up\nSELECT 1;\n-- migrate:down\n",
                1,
                "no `-- migrate:up`",
            ),
        ];
        for (text, line, words) in cases {
            let p = sections(text).expect_err(text);
            assert_eq!(p.line, *line, "{text:?}: {p:?}");
            assert!(p.message.contains(words), "{text:?}: {p:?}");
        }
    }

    #[test]
    fn several_blocks_are_one_migration_in_file_order() {
        // dbmate 2.29's own example of a file with two blocks.
        let text = "-- migrate:up\nCREATE TABLE users (id int);\n\n-- migrate:down\nDROP TABLE users;\n\n-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n\n-- migrate:down\nALTER TABLE users DROP COLUMN email;\n";
        let s = sections(text).expect("valid");
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].kind, s[1].kind), (Kind::Up, Kind::Down));
        assert_eq!(
            s[0].sql,
            "-- migrate:up\nCREATE TABLE users (id int);\n\n\n\n\n-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n\n\n\n"
        );
        assert_eq!(s[0].sql.lines().count(), text.lines().count());
        assert!(!s[1].sql.contains("CREATE") && !s[1].sql.contains("ADD COLUMN"));
        assert!(s[1].sql.contains("DROP TABLE") && s[1].sql.contains("DROP COLUMN"));
        // The up checksum covers the up sections only.
        assert_eq!(
            s[0].text,
            "-- migrate:up\nCREATE TABLE users (id int);\n\n-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n\n"
        );
        assert!(!s[0].no_transaction && !s[1].no_transaction);
        let quiet = "-- migrate:up transaction:false\nSELECT 1;\n-- migrate:down\n-- migrate:up transaction:false\nSELECT 2;\n-- migrate:down\n";
        assert!(sections(quiet).expect("valid")[0].no_transaction);
    }

    #[test]
    fn claims_marked_files_by_name() {
        assert!(marked("-- migrate:up\nSELECT 1;"));
        assert!(marked("SELECT 1;\n --Migrate:Down\n"));
        assert!(!marked("-- migrate:upgrade notes\nSELECT 1;"));
        assert!(!marked("SELECT '-- migrate:up';"));
        let c = claim(Entry::File("20151129054053_test_migration.sql"))
            .expect("claimed")
            .expect("valid");
        assert_eq!(c.version_text, "20151129054053");
        assert_eq!(c.name, "test_migration");
    }
}
