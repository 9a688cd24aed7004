//! diesel (`diesel_migrations`): one directory per migration, `<version>_<name>/up.sql` and
//! `down.sql`, with an optional `metadata.toml` (`run_in_transaction = false`). The version is
//! the directory name up to the first `_` with its `-` removed, as diesel stores it
//! (`2017-08-21-103021_create_users` is version `20170821103021`); diesel's own
//! `00000000000000_diesel_initial_setup` is version 0.

use super::{version_of, Claim, Def, Entry, Kind, Layout, New, Problem, Role, Settings};

pub(super) const DEF: Def = Def {
    layout: Layout::Diesel,
    needs_own_file: false,
    own_files: &[],
    claim,
    marked: None,
    sections: None,
    settings: Some(settings),
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let Entry::Dir(dir, entries) = entry else {
        return None;
    };
    let find = |want: &str| entries.iter().find(|e| e.eq_ignore_ascii_case(want));
    let up = find("up.sql");
    let down = find("down.sql");
    if up.is_none() && down.is_none() {
        return None;
    }
    Some(parse(dir).and_then(|(version_text, digits, name)| {
        let Some(up) = up else {
            return Err(format!("{dir}/ has a down.sql and no up.sql"));
        };
        let mut files = vec![(
            format!("{dir}/{up}"),
            Role::Script(if down.is_some() {
                Kind::Up
            } else {
                Kind::Irreversible
            }),
        )];
        if let Some(down) = down {
            files.push((format!("{dir}/{down}"), Role::Script(Kind::Down)));
        }
        if let Some(meta) = find("metadata.toml") {
            files.push((format!("{dir}/{meta}"), Role::Settings));
        }
        Ok(Claim {
            version: Some(version_of(&digits)?),
            version_text,
            name,
            files,
        })
    }))
}

/// `(as written, digits, name)` of a diesel directory name.
fn parse(dir: &str) -> Result<(String, String, String), String> {
    let (written, name) = dir.split_once('_').unwrap_or((dir, ""));
    let digits: String = written.chars().filter(|&c| c != '-').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "version `{written}` of directory {dir}/ is not digits (and `-`)"
        ));
    }
    if name.is_empty() {
        return Err(format!(
            "directory {dir}/ has no `_<name>` after its version"
        ));
    }
    Ok((written.to_owned(), digits, name.to_owned()))
}

/// `metadata.toml`: diesel reads `run_in_transaction`; anything else in it is refused, since a
/// setting shipgate would ignore is a migration that runs differently than its author meant.
fn settings(text: &str) -> Result<Settings, Problem> {
    let mut out = Settings::default();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| Problem {
        line: e
            .span()
            .map_or(1, |s| 1 + text[..s.start].matches('\n').count()),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    for (key, value) in table {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key.as_str()))
            .map_or(1, |i| i + 1);
        match (key.as_str(), value) {
            ("run_in_transaction", toml::Value::Boolean(b)) => out.no_transaction = !b,
            ("run_in_transaction", _) => {
                return Err(Problem {
                    line,
                    message: "`run_in_transaction` must be true or false".into(),
                })
            }
            (other, _) => {
                return Err(Problem {
                    line,
                    message: format!(
                        "unknown diesel migration setting `{other}` (known: run_in_transaction)"
                    ),
                })
            }
        }
    }
    Ok(out)
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    // diesel names directories `%Y-%m-%d-%H%M%S_<name>`.
    let s = new.stamp;
    let dir = match (s.get(..4), s.get(4..6), s.get(6..8), s.get(8..)) {
        (Some(y), Some(m), Some(d), Some(t)) => format!("{y}-{m}-{d}-{t}_{}", new.name),
        _ => format!("{s}_{}", new.name),
    };
    let mut files = vec![(format!("{dir}/up.sql"), new.up_comment())];
    if new.down {
        files.push((format!("{dir}/down.sql"), new.down_comment()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_diesel_directories() {
        let entries = [
            "up.sql".to_owned(),
            "down.sql".to_owned(),
            "metadata.toml".to_owned(),
        ];
        let c = claim(Entry::Dir("2017-08-21-103021_create_users", &entries))
            .expect("claimed")
            .expect("valid");
        assert_eq!(c.version_text, "2017-08-21-103021");
        assert_eq!(
            c.version,
            Some("20170821103021".parse().expect("a version"))
        );
        assert_eq!(c.name, "create_users");
        assert_eq!(c.files.len(), 3);
        let setup = claim(Entry::Dir(
            "00000000000000_diesel_initial_setup",
            &entries[..2],
        ))
        .expect("claimed")
        .expect("valid");
        assert_eq!(setup.version, Some("0".parse().expect("a version")));
        assert_eq!(claim(Entry::Dir("seeds", &["data.csv".to_owned()])), None);
        assert!(matches!(
            claim(Entry::Dir("x_y", &entries[..1])),
            Some(Err(_))
        ));
    }

    #[test]
    fn reads_metadata() {
        assert_eq!(
            settings("run_in_transaction = false\n"),
            Ok(Settings {
                no_transaction: true
            })
        );
        assert_eq!(settings(""), Ok(Settings::default()));
        assert!(settings("run_in_transaction = \"no\"").is_err());
        assert!(settings("retries = 3").is_err());
    }
}
