//! shipgate's own layout, which is sqlx's and golang-migrate's: `<version>_<name>.up.sql` with
//! `<version>_<name>.down.sql`, or `<version>_<name>.sql` for a migration without a down. The
//! version is a positive integer; the extension is read in any case (`2_a.SQL`), since the
//! server does not care and a skipped migration is a deploy that silently did not happen.
//! `R__<name>.sql` is a repeatable migration (Flyway's name for one): no version, run again
//! whenever its checksum changes, after the versioned ones.

use super::{
    digits_and_name, strip_suffix_ignore_case, version_of, Claim, Def, Entry, Kind, Layout, New,
    Role,
};

pub(super) const DEF: Def = Def {
    layout: Layout::Native,
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
    if file.starts_with('.') {
        return None;
    }
    let strip = |suffix| strip_suffix_ignore_case(file, suffix);
    if file.starts_with("R__") {
        return Some(repeatable(file, strip(".sql")?));
    }
    let (stem, kind) = if let Some(stem) = strip(".up.sql") {
        (stem, Kind::Up)
    } else if let Some(stem) = strip(".down.sql") {
        (stem, Kind::Down)
    } else {
        (strip(".sql")?, Kind::Irreversible)
    };
    Some(parse(stem).map(|(version_text, version, name)| Claim {
        version: Some(version),
        version_text,
        name,
        files: vec![(file.to_owned(), Role::Script(kind))],
    }))
}

/// The claim of repeatable `file` (`R__<name>.sql`, `stem` without `.sql`).
fn repeatable(file: &str, stem: &str) -> Result<Claim, String> {
    let name = &stem["R__".len()..];
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".up") || lower.ends_with(".down") {
        return Err("a repeatable migration is one file, `R__<name>.sql`: it has no down script and no `.up`/`.down` in its name".into());
    }
    if name.is_empty() {
        return Err("the name after `R__` is empty".into());
    }
    Ok(Claim {
        version: None,
        version_text: String::new(),
        name: name.to_owned(),
        files: vec![(file.to_owned(), Role::Script(Kind::Repeatable))],
    })
}

fn parse(stem: &str) -> Result<(String, super::Version, String), String> {
    let (digits, name) = digits_and_name(stem)?;
    // History written before versions had parts keeps them in a 64-bit signed column.
    if digits.parse::<i64>().is_err() {
        return Err(format!("version `{digits}` is larger than {}", i64::MAX));
    }
    let version = version_of(digits)?;
    if digits.bytes().all(|b| b == b'0') {
        return Err("version 0 is not positive".into());
    }
    Ok((digits.to_owned(), version, name.to_owned()))
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    let (stamp, name) = (new.stamp, new.name);
    let up = format!(
        "{}-- Directives go in this leading comment block, e.g.:\n\
         --   -- shipgate:no-transaction     (for CREATE INDEX CONCURRENTLY)\n\
         --   -- shipgate:lock-timeout 10s\n\
         -- An empty down file makes the migration irreversible.\n",
        new.up_comment()
    );
    // Without a down script the up file keeps its `.up.sql` name, so one can be added later.
    let mut files = vec![(format!("{stamp}_{name}.up.sql"), up)];
    if new.down {
        files.push((format!("{stamp}_{name}.down.sql"), new.down_comment()));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_native_names() {
        let kind = |name: &str| match claim(Entry::File(name)) {
            Some(Ok(c)) => Ok(match c.files[0].1 {
                Role::Script(k) => (c.version_text, c.name, k),
                other => panic!("{other:?}"),
            }),
            Some(Err(e)) => Err(e),
            None => Err("not claimed".into()),
        };
        assert_eq!(
            kind("2_Add-Users.v2.up.sql"),
            Ok(("2".into(), "Add-Users.v2".into(), Kind::Up))
        );
        assert_eq!(
            kind("3_b.DOWN.SQL"),
            Ok(("3".into(), "b".into(), Kind::Down))
        );
        assert_eq!(
            kind("10_c.sql"),
            Ok(("10".into(), "c".into(), Kind::Irreversible))
        );
        assert!(kind("0_a.sql").is_err());
        assert!(kind("x_a.sql").is_err());
        assert!(kind("1_.sql").is_err());
        assert_eq!(kind("README.md"), Err("not claimed".into()));
        assert_eq!(kind(".1_a.sql"), Err("not claimed".into()));
        assert_eq!(
            kind("R__refresh_views.sql"),
            Ok((String::new(), "refresh_views".into(), Kind::Repeatable))
        );
        assert!(kind("R__.sql").is_err());
        assert!(kind("R__v.up.sql").is_err());
    }
}

/// Properties of the native name parser over generated names.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// What `claim` makes of a file name: version, name and kind, or why not.
    fn parsed(file: &str) -> Result<(super::super::Version, String, Kind), String> {
        match claim(Entry::File(file)) {
            None => Err("not a .sql file".into()),
            Some(Err(reason)) => Err(reason),
            Some(Ok(c)) => match c.files[0].1 {
                Role::Script(kind) => Ok((c.version.ok_or("a repeatable")?, c.name, kind)),
                other => Err(format!("unexpected role {other:?}")),
            },
        }
    }

    /// A migration name as projects write them: letters, digits, `_`, `-`, `.`; never empty.
    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_.-]{0,30}".prop_filter("not a suffix of its own", |n| {
            let n = n.to_ascii_lowercase();
            !n.ends_with(".up") && !n.ends_with(".down")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_file_name_parses_or_says_why(file in "\\PC{0,40}") {
            if let Err(reason) = parsed(&file) {
                prop_assert!(!reason.is_empty());
            }
        }

        #[test]
        fn a_well_formed_name_round_trips(
            version in 1..=i64::MAX,
            name in name(),
            kind in prop_oneof![Just(Kind::Up), Just(Kind::Down), Just(Kind::Irreversible)],
        ) {
            let suffix = match kind {
                Kind::Up => ".up.sql",
                Kind::Down => ".down.sql",
                _ => ".sql",
            };
            let file = format!("{version}_{name}{suffix}");
            let want: super::super::Version = version.to_string().parse().expect("a version");
            prop_assert_eq!(parsed(&file), Ok((want, name, kind)));
        }

        #[test]
        fn a_version_that_is_not_a_positive_integer_is_refused(
            digits in "[0-9]{0,3}[^0-9_]?[0-9]{0,3}|0+|[0-9]{20,25}",
            name in name(),
        ) {
            let positive = digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<i64>().is_ok_and(|v| v > 0);
            let result = parsed(&format!("{digits}_{name}.up.sql"));
            prop_assert_eq!(result.is_ok(), positive, "{:?}", result);
        }
    }
}
