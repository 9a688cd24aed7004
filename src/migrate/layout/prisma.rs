//! Prisma Migrate: one directory per migration, `<timestamp>_<name>/migration.sql`, and a
//! `migration_lock.toml` beside them naming the provider. Prisma migrations have no downs.
//! The version is the timestamp before the first `_`.

use super::{digits_and_name, version_of, Claim, Def, Entry, Kind, Layout, New, Role};

pub(super) const DEF: Def = Def {
    layout: Layout::Prisma,
    needs_own_file: false,
    own_files: &["migration_lock.toml"],
    claim,
    marked: None,
    sections: None,
    settings: None,
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let Entry::Dir(dir, entries) = entry else {
        return None;
    };
    let file = entries
        .iter()
        .find(|e| e.eq_ignore_ascii_case("migration.sql"))?;
    Some(
        digits_and_name(dir)
            .map_err(|e| format!("directory {dir}/: {e}"))
            .and_then(|(digits, name)| {
                Ok(Claim {
                    version: Some(version_of(digits)?),
                    version_text: digits.to_owned(),
                    name: name.to_owned(),
                    files: vec![(format!("{dir}/{file}"), Role::Script(Kind::Irreversible))],
                })
            }),
    )
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    vec![(
        format!("{}_{}/migration.sql", new.stamp, new.name),
        new.up_comment(),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prisma_directories() {
        let c = claim(Entry::Dir(
            "20210101000000_init",
            &["migration.sql".to_owned()],
        ))
        .expect("claimed")
        .expect("valid");
        assert_eq!(c.version_text, "20210101000000");
        assert_eq!(c.name, "init");
        assert_eq!(c.files[0].0, "20210101000000_init/migration.sql");
        assert_eq!(claim(Entry::Dir("seeds", &["a.sql".to_owned()])), None);
    }
}
