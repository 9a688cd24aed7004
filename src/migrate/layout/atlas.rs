//! Atlas (`ariga.io/atlas/sql/migrate`, its `dir.go`): `<version>_<name>.sql` files, each a
//! migration without a down, and the `atlas.sum` integrity file beside them, whose presence
//! says the directory is Atlas's.

use super::{numbered_sql_file, Claim, Def, Entry, Kind, Layout, New, Role};

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
    numbered_sql_file(entry, Role::Script(Kind::Irreversible))
}

fn template(new: &New<'_>) -> Vec<(String, String)> {
    vec![(format!("{}_{}.sql", new.stamp, new.name), new.up_comment())]
}
