//! Other tools' migration layouts, recognised so that shipgate never misreads them.
//!
//! shipgate reads its native layout (which is sqlx's and golang-migrate's). A directory written
//! for diesel, Prisma, Flyway, goose or dbmate would otherwise be read wrongly: its files
//! skipped as "not migrations" (a release that succeeds with nothing applied), or a goose or
//! dbmate file run whole, its down section right after its up. Until those layouts are read,
//! `source` turns every match here into a validation error naming the layout and the file.
//!
//! Pure: file names, the names inside a subdirectory, and file text in; what was recognised
//! out. It must not decide what to do about a match; that is `source`'s job.

use std::fmt;

/// A migration tool whose layout shipgate recognises but does not read yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<version>_<name>/up.sql` and `down.sql` subdirectories.
    Diesel,
    /// `<timestamp>_<name>/migration.sql` subdirectories and `migration_lock.toml`.
    Prisma,
    /// `V<version>__<description>.sql`, `U…`, `B…` and `R__<description>.sql`.
    Flyway,
    /// One file with `-- +goose Up` and `-- +goose Down` sections; Go migrations.
    Goose,
    /// One file with `-- migrate:up` and `-- migrate:down` sections.
    Dbmate,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Diesel => "diesel",
            Layout::Prisma => "Prisma",
            Layout::Flyway => "Flyway",
            Layout::Goose => "goose",
            Layout::Dbmate => "dbmate",
        })
    }
}

/// A file or subdirectory entry recognised as another tool's: the layout and the shape it
/// has, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recognised {
    /// The tool.
    pub layout: Layout,
    /// The file's shape in that layout, e.g. "a Flyway versioned migration (`V<version>__<description>.sql`)".
    pub shape: &'static str,
}

/// What a file name directly in the migrations directory says about another tool's layout.
/// Native names (`<version>_<name>.sql` and the like) are never recognised here.
pub fn file_name(name: &str) -> Option<Recognised> {
    let found = |layout, shape| Some(Recognised { layout, shape });
    if name == "migration_lock.toml" {
        return found(Layout::Prisma, "Prisma's migration lock file");
    }
    if let Some(stem) = strip_suffix_ignore_case(name, ".go") {
        // goose's Go migrations: `00001_create_users.go`. An `embed.go` beside SQL files
        // has no version and is not one.
        let versioned = stem.split_once('_').is_some_and(|(v, rest)| {
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
        });
        return versioned.then_some(Recognised {
            layout: Layout::Goose,
            shape: "a goose Go migration (`<version>_<name>.go`)",
        });
    }
    let stem = strip_suffix_ignore_case(name, ".sql")?;
    if stem.starts_with("R__") {
        return found(
            Layout::Flyway,
            "a Flyway repeatable migration (`R__<description>.sql`)",
        );
    }
    let shape = match stem.as_bytes().first()? {
        b'V' => "a Flyway versioned migration (`V<version>__<description>.sql`)",
        b'U' => "a Flyway undo migration (`U<version>__<description>.sql`)",
        b'B' => "a Flyway baseline migration (`B<version>__<description>.sql`)",
        _ => return None,
    };
    // Flyway versions are digits separated by `.` or `_`: `V1__`, `V1.2__`, `V2_1__`.
    let (version, _description) = stem[1..].split_once("__")?;
    let is_version = version.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && version
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_');
    is_version.then_some(Recognised {
        layout: Layout::Flyway,
        shape,
    })
}

/// What the entries of a subdirectory of the migrations directory say: diesel keeps each
/// migration in a directory with `up.sql` and `down.sql`, Prisma in one with `migration.sql`.
/// Returns the recognised entry (the first in name order) and what it is. Any other
/// subdirectory (seeds, an archive) is not a migration and is left alone.
pub fn directory<'a>(entries: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, Recognised)> {
    entries
        .into_iter()
        .filter_map(|entry| {
            let recognised =
                if entry.eq_ignore_ascii_case("up.sql") || entry.eq_ignore_ascii_case("down.sql") {
                    Recognised {
                        layout: Layout::Diesel,
                        shape: "a diesel migration (`<version>_<name>/up.sql` and `down.sql`)",
                    }
                } else if entry.eq_ignore_ascii_case("migration.sql") {
                    Recognised {
                        layout: Layout::Prisma,
                        shape: "a Prisma migration (`<timestamp>_<name>/migration.sql`)",
                    }
                } else {
                    return None;
                };
            Some((entry, recognised))
        })
        .min_by_key(|(entry, _)| *entry)
}

/// A goose or dbmate section marker in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The tool whose marker it is.
    pub layout: Layout,
    /// The line (1-based).
    pub line: usize,
    /// The line as written, trimmed.
    pub text: String,
}

/// The first goose or dbmate section marker in `text`, if any.
///
/// Both tools read markers line by line, as line comments: goose takes a line whose comment
/// begins with `+goose` as an annotation and compares the rest case-insensitively (`-- +goose
/// Up`, `--+goose down`); dbmate matches `-- migrate:up` / `-- migrate:down` at the start of a
/// line, followed by the end of the line or options. Lines are matched the same way here, and
/// a little more widely (leading white space, any case of `+goose` and `migrate:`): a wider
/// match only refuses a file that the tool itself would reject, while a narrower one would
/// run a down section.
pub fn marker(text: &str) -> Option<Marker> {
    // Every file is scanned on every deploy: look only where a `--` stands first on its line,
    // rather than at every line.
    text.match_indices("--").find_map(|(at, _)| {
        let start = text[..at].rfind('\n').map_or(0, |nl| nl + 1);
        if !text[start..at].trim_start().is_empty() {
            return None;
        }
        let end = text[at..].find('\n').map_or(text.len(), |nl| at + nl);
        let line = &text[start..end];
        // goose drops every `--` of an annotation line: `---- +goose Up` is one too.
        let comment = text[at..end].trim_start_matches('-').trim_start();
        let layout = if starts_with_ignore_case(comment, "+goose") {
            Layout::Goose
        } else if ["migrate:up", "migrate:down"].iter().any(|m| {
            starts_with_ignore_case(comment, m)
                && comment[m.len()..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        }) {
            Layout::Dbmate
        } else {
            return None;
        };
        Some(Marker {
            layout,
            line: text[..start].bytes().filter(|&b| b == b'\n').count() + 1,
            text: line.trim().to_owned(),
        })
    })
}

/// `name` without `suffix`, compared ignoring ASCII case: `2_a.SQL` ends with `.sql`.
pub fn strip_suffix_ignore_case<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(suffix.len())?;
    // The bytes matched an ASCII suffix, so `cut` falls on a character boundary.
    name.as_bytes()[cut..]
        .eq_ignore_ascii_case(suffix.as_bytes())
        .then(|| &name[..cut])
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_other_tools_file_names() {
        let cases: &[(&str, Option<Layout>)] = &[
            ("V1__init.sql", Some(Layout::Flyway)),
            ("V1.2.10__add_users.sql", Some(Layout::Flyway)),
            ("V2_1__Add users.SQL", Some(Layout::Flyway)),
            ("U1.1__drop.sql", Some(Layout::Flyway)),
            ("B5__baseline.sql", Some(Layout::Flyway)),
            ("R__views.sql", Some(Layout::Flyway)),
            ("migration_lock.toml", Some(Layout::Prisma)),
            ("00001_create_users.go", Some(Layout::Goose)),
            // Native names, and names that are simply bad, are not another tool's.
            ("1_init.sql", None),
            ("20240101000000_V2__x.up.sql", None),
            ("V2_users.up.sql", None),
            ("Vx__init.sql", None),
            ("V__init.sql", None),
            ("embed.go", None),
            ("README.md", None),
            ("atlas.sum", None),
        ];
        for (name, want) in cases {
            assert_eq!(file_name(name).map(|r| r.layout), *want, "{name}");
        }
    }

    #[test]
    fn recognises_diesel_and_prisma_directories() {
        assert_eq!(
            directory(["down.sql", "up.sql"]).map(|(e, r)| (e, r.layout)),
            Some(("down.sql", Layout::Diesel))
        );
        assert_eq!(
            directory(["UP.SQL"]).map(|(e, r)| (e, r.layout)),
            Some(("UP.SQL", Layout::Diesel))
        );
        assert_eq!(
            directory(["migration.sql", "README.md"]).map(|(e, r)| (e, r.layout)),
            Some(("migration.sql", Layout::Prisma))
        );
        assert_eq!(directory(["seed.sql", "notes.md"]), None);
        assert_eq!(directory([]), None);
    }

    #[test]
    fn finds_goose_and_dbmate_markers_as_the_tools_do() {
        let cases: &[(&str, Option<(Layout, usize)>)] = &[
            (
                "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;",
                Some((Layout::Goose, 1)),
            ),
            ("--+goose up\nSELECT 1;", Some((Layout::Goose, 1))),
            (
                "-- comment\n\n-- +goose DOWN\nDROP TABLE t;",
                Some((Layout::Goose, 3)),
            ),
            (
                "-- +goose StatementBegin\nSELECT 1;",
                Some((Layout::Goose, 1)),
            ),
            ("  -- +goose Down\n", Some((Layout::Goose, 1))),
            ("SELECT 1;\n---- +goose Down\n", Some((Layout::Goose, 2))),
            (
                "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n",
                Some((Layout::Dbmate, 1)),
            ),
            (
                "--migrate:up transaction:false\nSELECT 1;",
                Some((Layout::Dbmate, 1)),
            ),
            (
                "SELECT 1;\n-- migrate:down\nDROP TABLE t;",
                Some((Layout::Dbmate, 2)),
            ),
            ("-- Migrate:Down\n", Some((Layout::Dbmate, 1))),
            // Not markers: prose that mentions them, a longer word, SQL.
            ("-- converted from a +goose file\nSELECT 1;", None),
            ("-- migrate:upgrade notes\nSELECT 1;", None),
            ("SELECT '-- +goose Up';", None),
            (
                "CREATE TABLE t (id int);\n-- shipgate:no-transaction\n",
                None,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(marker(text).map(|m| (m.layout, m.line)), *want, "{text:?}");
        }
        assert_eq!(
            marker("SELECT 1;\n  -- +goose Down  \n").map(|m| m.text),
            Some("-- +goose Down".to_owned())
        );
    }

    #[test]
    fn strips_a_suffix_in_any_case() {
        assert_eq!(strip_suffix_ignore_case("2_a.SQL", ".sql"), Some("2_a"));
        assert_eq!(
            strip_suffix_ignore_case("3_b.Up.Sql", ".up.sql"),
            Some("3_b")
        );
        assert_eq!(strip_suffix_ignore_case("é.sql", ".sql"), Some("é"));
        assert_eq!(strip_suffix_ignore_case("sql", ".sql"), None);
        assert_eq!(strip_suffix_ignore_case("1_aésql", ".sql"), None);
    }
}
