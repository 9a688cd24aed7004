//! goose's and dbmate's section markers, found wherever they stand in a file's text, so that a
//! file with up and down sections is never run whole (its down section right after its up) by
//! a layout that does not cut sections.
//!
//! Pure: file text in, the first marker out. It must not decide what to do about a match;
//! that is `source`'s job.

use super::layout::Layout;

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

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
