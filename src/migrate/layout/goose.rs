//! goose (`internal/sqlparser/parser.go`): `<version>_<name>.sql`, one file per migration with
//! `-- +goose Up` and an optional `-- +goose Down` section. Annotations are lines that start
//! with `--` whose rest, trimmed, is `+goose <word>`: `Up`, `Down`, `StatementBegin` /
//! `StatementEnd` (a statement with semicolons inside, which PostgreSQL's, MySQL's and SQLite's
//! own rules already keep whole), and `NO TRANSACTION` (the whole migration runs outside a
//! transaction). `ENVSUB ON` (environment variables substituted into the SQL) is refused: what
//! runs must be what the file says. Go migrations (`<version>_<name>.go`) are refused with a
//! message that says so: they are programs, not SQL.

use super::{
    cut_sections, digits_and_name, numbered_sql_file, strip_suffix_ignore_case, Claim, Def, Entry,
    Kind, Layout, New, Problem, Role, Section,
};

pub(super) const DEF: Def = Def {
    layout: Layout::Goose,
    needs_own_file: false,
    own_files: &[],
    claim,
    marked: Some(marked),
    sections: Some(sections),
    settings: None,
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let Entry::File(file) = entry else {
        return None;
    };
    if file.starts_with('.') {
        return None;
    }
    if let Some(stem) = strip_suffix_ignore_case(file, ".go") {
        // `embed.go` or a `migrations.go` registering them has no version and is not one.
        if stem.ends_with("_test") || digits_and_name(stem).is_err() {
            return None;
        }
        return Some(Err(
            "a goose Go migration: shipgate runs SQL only; rewrite it as a `.sql` migration, or keep running it with goose"
                .into(),
        ));
    }
    numbered_sql_file(entry, Role::Sections)
}

/// The annotation on `line`, as goose reads it: the line starts with `--`; the rest, trimmed,
/// starts with `+goose`. The word after it is compared ignoring case, as goose 3.16+ does.
fn annotation(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("--")?.trim();
    let word =
        super::starts_with_ignore_case(rest, "+goose").then(|| rest["+goose".len()..].trim())?;
    Some(word)
}

fn marked(text: &str) -> bool {
    // A little wider than goose (leading white space, `---- +goose`): a file goose would
    // reject is claimed, and its problem reported, rather than read as another layout's.
    text.lines().any(|l| {
        let t = l.trim_start().trim_start_matches('-');
        l.trim_start().starts_with("--") && super::starts_with_ignore_case(t.trim_start(), "+goose")
    })
}

fn sections(text: &str) -> Result<Vec<Section>, Problem> {
    let mut up_at = None;
    let mut down_at = None;
    let mut open_statement: Option<usize> = None;
    let mut no_transaction = false;
    let mut statement_before_up = None;
    let mut sections = cut_sections(text, |line_no, line| {
        let Some(word) = annotation(line) else {
            let bare = line.trim();
            if up_at.is_none()
                && statement_before_up.is_none()
                && !bare.is_empty()
                && !bare.starts_with("--")
            {
                statement_before_up = Some(line_no);
            }
            return Ok(None);
        };
        let problem = |message: String| Problem {
            line: line_no,
            message,
        };
        match word.to_ascii_lowercase().as_str() {
            "up" => {
                if up_at.is_some() {
                    return Err(problem("a second `-- +goose Up`: goose refuses duplicate Up annotations".into()));
                }
                up_at = Some(line_no);
                Ok(Some((Kind::Up, false)))
            }
            "down" => {
                if up_at.is_none() {
                    return Err(problem("`-- +goose Down` before `-- +goose Up`: a goose file must start with its Up section".into()));
                }
                if down_at.is_some() {
                    return Err(problem("a second `-- +goose Down`".into()));
                }
                if let Some(begin) = open_statement {
                    return Err(problem(format!("`-- +goose Down` inside the statement that `StatementBegin` opened on line {begin}: close it with `-- +goose StatementEnd`")));
                }
                down_at = Some(line_no);
                Ok(Some((Kind::Down, false)))
            }
            "statementbegin" => {
                if up_at.is_none() {
                    return Err(problem("`-- +goose StatementBegin` before `-- +goose Up`".into()));
                }
                if let Some(begin) = open_statement {
                    return Err(problem(format!("`-- +goose StatementBegin` inside the statement opened on line {begin}")));
                }
                open_statement = Some(line_no);
                Ok(None)
            }
            "statementend" => {
                if open_statement.take().is_none() {
                    return Err(problem("`-- +goose StatementEnd` without `-- +goose StatementBegin`".into()));
                }
                Ok(None)
            }
            "no transaction" => {
                no_transaction = true;
                Ok(None)
            }
            "envsub on" => Err(problem("`-- +goose ENVSUB ON` substitutes environment variables into the SQL when goose runs it; shipgate runs what the file says: write the values into the file".into())),
            "envsub off" => Ok(None),
            _ => Err(problem(format!("unknown goose annotation `+goose {word}` (known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION)"))),
        }
    })?;
    if let Some(begin) = open_statement {
        return Err(Problem {
            line: begin,
            message: "`-- +goose StatementBegin` without `-- +goose StatementEnd`".into(),
        });
    }
    if up_at.is_none() {
        return Err(Problem {
            line: 1,
            message:
                "no `-- +goose Up` annotation: goose requires each SQL migration to start with one"
                    .into(),
        });
    }
    if let Some(line) = statement_before_up {
        return Err(Problem {
            line,
            message:
                "a statement before `-- +goose Up`: goose refuses it; move it into the Up section"
                    .into(),
        });
    }
    // `NO TRANSACTION` holds for the whole file, wherever it stands.
    for s in &mut sections {
        s.no_transaction = no_transaction;
    }
    Ok(sections)
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    let down = if new.down {
        format!("\n-- +goose Down\n{}", new.down_comment())
    } else {
        String::new()
    };
    vec![(
        format!("{}_{}.sql", new.stamp, new.name),
        format!("-- +goose Up\n{}{down}", new.up_comment()),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_up_and_down_and_reads_no_transaction() {
        let text = "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION f();\n-- +goose NO TRANSACTION\n";
        let s = sections(text).expect("valid");
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.no_transaction));
        assert_eq!(s[1].sql.lines().count(), text.lines().count());
        assert!(s[0].sql.contains("CREATE FUNCTION") && !s[0].sql.contains("DROP FUNCTION"));
        let only_up = sections("--+goose up\nSELECT 1;\n").expect("valid");
        assert_eq!(only_up.len(), 1);
        assert!(!only_up[0].no_transaction);
    }

    #[test]
    fn refuses_what_goose_refuses() {
        let cases: &[(&str, usize, &str)] = &[
            ("SELECT 1;\n-- +goose Up\nSELECT 2;\n", 1, "before"),
            ("-- +goose Down\nSELECT 1;\n", 1, "before `-- +goose Up`"),
            ("-- +goose Up\n-- +goose Up\n", 2, "second"),
            (
                "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
                2,
                "without `-- +goose StatementEnd`",
            ),
            ("-- +goose Up\n-- +goose StatementEnd\n", 2, "without"),
            (
                "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${X}';\n",
                2,
                "ENVSUB",
            ),
            (
                "-- +goose Up\n-- +goose Sideways\n",
                2,
                "unknown goose annotation",
            ),
        ];
        for (text, line, words) in cases {
            let p = sections(text).expect_err(text);
            assert_eq!(p.line, *line, "{text:?}: {p:?}");
            assert!(p.message.contains(words), "{text:?}: {p:?}");
        }
    }

    #[test]
    fn go_migrations_are_claimed_and_refused() {
        assert!(
            matches!(claim(Entry::File("00002_backfill.go")), Some(Err(e)) if e.contains("Go migration"))
        );
        assert_eq!(claim(Entry::File("embed.go")), None);
        assert!(marked("-- +goose Up\nSELECT 1;"));
        assert!(marked("SELECT 1;\n  ---- +goose Down\n"));
        assert!(!marked("-- converted from a +goose file\n"));
    }
}
