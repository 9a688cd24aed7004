//! Atlas (`ariga.io/atlas/sql/migrate`, its `dir.go`): `<version>_<name>.sql` files, each a
//! migration without a down, and the `atlas.sum` integrity file beside them, whose presence
//! says the directory is Atlas's. The name is optional, as Atlas reads it (the version is the
//! file name up to the first `_`): `atlas migrate diff` without a name writes `<version>.sql`.

use super::{
    numbered_sql_file, strip_suffix_ignore_case, version_of, Claim, Def, Entry, Kind, Layout, New,
    Role,
};

pub(super) const DEF: Def = Def {
    layout: Layout::Atlas,
    needs_own_file: true,
    own_files: &["atlas.sum"],
    claim,
    marked: None,
    sections: None,
    settings: None,
    template,
};

fn claim(entry: Entry<'_>) -> Option<Result<Claim, String>> {
    let role = Role::Script(Kind::Irreversible);
    if let Entry::File(file) = entry {
        let version = strip_suffix_ignore_case(file, ".sql")
            .filter(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()));
        if let Some(digits) = version {
            return Some(version_of(digits).map(|version| Claim {
                version: Some(version),
                version_text: digits.to_owned(),
                name: String::new(),
                files: vec![(file.to_owned(), role)],
            }));
        }
    }
    numbered_sql_file(entry, role)
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    vec![(format!("{}_{}.sql", new.stamp, new.name), new.up_comment())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_with_and_without_a_description() {
        let c = claim(Entry::File("20221114082343_create_users.sql"))
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            (c.version_text.as_str(), c.name.as_str()),
            ("20221114082343", "create_users")
        );
        let bare = claim(Entry::File("20240713195943.sql"))
            .expect("claimed")
            .expect("valid");
        assert_eq!(
            bare.version,
            Some("20240713195943".parse().expect("a version"))
        );
        assert_eq!(bare.name, "");
        assert_eq!(bare.files[0].0, "20240713195943.sql");
        assert!(matches!(claim(Entry::File("initial.sql")), Some(Err(_))));
        assert_eq!(claim(Entry::File("atlas.sum")), None);
    }
}
