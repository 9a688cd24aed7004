//! dbmate (`pkg/dbmate/migration.go`): `<version>_<name>.sql`, one file per migration with a
//! `-- migrate:up` section and a `-- migrate:down` section, read as dbmate reads them: the first
//! line that starts `-- migrate:up` (case as written, at the start of the line) opens the up
//! section, the first `-- migrate:down` line the down section, which must come after it; only
//! comments may precede the up section; `transaction:false` after a marker runs that section
//! outside a transaction. The version is the digits before the first `_`.

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
    let mut seen_up = false;
    let mut seen_down = false;
    let mut statement_before_up = None;
    let sections = cut_sections(text, |line_no, line| {
        match exact_marker(line) {
            Some((Kind::Up, options)) if !seen_up => {
                if seen_down {
                    return Err(Problem {
                        line: line_no,
                        message: "`-- migrate:up` must come before `-- migrate:down` (dbmate requires it)".into(),
                    });
                }
                seen_up = true;
                Ok(Some((Kind::Up, no_transaction(options))))
            }
            Some((Kind::Down, options)) if !seen_down => {
                seen_down = true;
                Ok(Some((Kind::Down, no_transaction(options))))
            }
            // dbmate reads only the first marker of each kind: later ones are comments
            // inside a section.
            Some(_) => Ok(None),
            None => {
                let bare = line.trim();
                if !seen_up
                    && statement_before_up.is_none()
                    && !bare.is_empty()
                    && !bare.starts_with("--")
                {
                    statement_before_up = Some(line_no);
                }
                Ok(None)
            }
        }
    })?;
    if !seen_up {
        let line = text
            .lines()
            .position(|l| loose_marker(l) == Some(Kind::Up))
            .map_or(1, |i| i + 1);
        return Err(Problem {
            line,
            message: "no `-- migrate:up` line (written at the start of the line, in lower case, as dbmate requires): dbmate would refuse this file".into(),
        });
    }
    if let Some(line) = statement_before_up {
        return Err(Problem {
            line,
            message: "a statement before `-- migrate:up`: dbmate does not run statements outside its sections; move it into one".into(),
        });
    }
    if !seen_down {
        return Err(Problem {
            line: text.lines().count().max(1),
            message: "no `-- migrate:down` section: dbmate requires one (leave it empty for a migration that cannot be reverted)".into(),
        });
    }
    Ok(sections)
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
            "\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n\n\n"
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
                3,
                "must come before",
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
