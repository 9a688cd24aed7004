//! Flyway: `V<version>__<description>.sql` versioned migrations, `U<version>__…` undo
//! migrations (their downs), with Flyway's default prefixes and `__` separator. The version is
//! digits separated by `.` or `_` (`V1.2.10__`, `V2_1__`).

use super::{strip_suffix_ignore_case, Claim, Def, Entry, Kind, Layout, New, Role};

pub(super) const DEF: Def = Def {
    layout: Layout::Flyway,
    needs_own_file: false,
    own_files: &[],
    claim,
    marked: None,
    sections: None,
    settings: None,
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let Entry::File(file) = entry else {
        return None;
    };
    let stem = strip_suffix_ignore_case(file, ".sql")?;
    let (prefix, rest) = stem.split_at_checked(1)?;
    let kind = match prefix {
        "V" => Kind::Up,
        "U" => Kind::Down,
        "B" => {
            return looks_versioned(rest).then(|| {
                Err("a Flyway baseline migration (`B<version>__`): shipgate does not read them; record the version with `shipgate baseline` and keep the V files".into())
            })
        }
        "R" if rest.starts_with("__") => {
            return Some(Err(
                "a Flyway repeatable migration (`R__`): shipgate does not read them yet".into(),
            ))
        }
        _ => return None,
    };
    if !looks_versioned(rest) {
        return None;
    }
    let (written, description) = rest.split_once("__").expect("looks_versioned found it");
    if description.is_empty() {
        return Some(Err(format!("{file}: no description after `__`")));
    }
    Some(
        written
            .replace('_', ".")
            .parse::<super::Version>()
            .map_err(|_| format!("version `{written}` is not a version shipgate reads yet"))
            .map(|version| Claim {
                version: Some(version),
                version_text: written.replace('_', "."),
                name: description.to_owned(),
                files: vec![(file.to_owned(), Role::Script(kind))],
            }),
    )
}

/// `<digits>[.|_<digits>]*__…`.
fn looks_versioned(rest: &str) -> bool {
    rest.split_once("__").is_some_and(|(v, _)| {
        v.bytes().next().is_some_and(|b| b.is_ascii_digit())
            && v.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_')
    })
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    let (n, name) = (new.next, new.name);
    let mut files = vec![(format!("V{n}__{name}.sql"), new.up_comment())];
    if new.down {
        files.push((format!("U{n}__{name}.sql"), new.down_comment()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flyway_names() {
        let c = claim(Entry::File("V2__Add_users.sql"))
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            (c.version_text.as_str(), c.name.as_str()),
            ("2", "Add_users")
        );
        assert_eq!(c.files[0].1, Role::Script(Kind::Up));
        let u = claim(Entry::File("U2__Add_users.sql"))
            .expect("claimed")
            .expect("valid");
        assert_eq!(u.files[0].1, Role::Script(Kind::Down));
        assert_eq!(claim(Entry::File("1_init.sql")), None);
        assert_eq!(claim(Entry::File("Vx__init.sql")), None);
        assert!(matches!(claim(Entry::File("B5__base.sql")), Some(Err(_))));
    }
}
