//! Migration directory layouts: which tool's files a directory holds, and what each file means.
//!
//! shipgate reads every common tool's directory as it is. Each layout is one module that says,
//! from a directory entry's name alone, whether the entry is one of its migrations (a
//! [`Claim`]: version, name, the files to read and what each holds) and, for the tools that
//! keep up and down in one file (goose, dbmate), how a file's text splits into the scripts that
//! run. The directory's layout is detected from the entries (`layout = auto`) or forced by the
//! configuration; a directory whose files belong to different layouts, or to none, is an error
//! naming the files. Adding a layout is one module and one line in [`LAYOUTS`].
//!
//! A few layouts check more than names ([`Checks`], registered in [`CHECKS`]): the directory
//! as a whole against the tool's own file (Atlas's `atlas.sum`, Prisma's `migration_lock.toml`),
//! and the directives a tool reads in a script's own text (Atlas's `-- atlas:txmode none`).
//! What a layout decides from a script's statements (Flyway's transaction detection and
//! placeholders) travels with the script as [`StatementRules`] and is applied by `source` when
//! it finds the statements, never on the every-deploy no-op. Flyway's names are configurable:
//! [`Options`] carries the project's settings to [`detect`].
//!
//! Pure: names, listings and file text in, claims, sections and verdicts out. Reading the files
//! is `source`'s job; so are checksums, `shipgate:` directives and statements, which are the
//! same whichever layout a script came from.

mod atlas;
mod dbmate;
mod diesel;
mod flyway;
mod goose;
mod native;
mod prisma;

use std::fmt;

use super::source::Version;
use super::split::{self, Statement};
use crate::engine::Engine;

pub use flyway::FlywayOptions;

/// A migration tool's directory layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layout {
    /// shipgate's own, which is sqlx's and golang-migrate's: `<version>_<name>.up.sql`,
    /// `.down.sql`, or `<version>_<name>.sql` for a migration without a down.
    Native,
    /// Atlas: `<version>_<name>.sql` and an `atlas.sum` integrity file.
    Atlas,
    /// dbmate: one `<version>_<name>.sql` file with `-- migrate:up` and `-- migrate:down`.
    Dbmate,
    /// goose: one `<version>_<name>.sql` file with `-- +goose Up` and `-- +goose Down`.
    Goose,
    /// diesel: `<version>_<name>/up.sql` and `down.sql` directories.
    Diesel,
    /// Prisma: `<timestamp>_<name>/migration.sql` directories and `migration_lock.toml`.
    Prisma,
    /// Flyway: `V<version>__<description>.sql`, `U<version>__…` undos and `R__…` repeatables.
    Flyway,
}

impl Layout {
    /// Every layout, in the order detection prefers them when a directory fits several.
    pub const ALL: [Layout; 7] = [
        Layout::Native,
        Layout::Atlas,
        Layout::Dbmate,
        Layout::Goose,
        Layout::Diesel,
        Layout::Prisma,
        Layout::Flyway,
    ];

    /// The layout's name in configuration (`layout = "goose"`), lower case.
    pub fn key(self) -> &'static str {
        match self {
            Layout::Native => "native",
            Layout::Atlas => "atlas",
            Layout::Dbmate => "dbmate",
            Layout::Goose => "goose",
            Layout::Diesel => "diesel",
            Layout::Prisma => "prisma",
            Layout::Flyway => "flyway",
        }
    }

    /// The layout named `key` in configuration; `sqlx` and `golang-migrate` name the native one.
    pub fn from_key(key: &str) -> Option<Layout> {
        let key = key.trim().to_ascii_lowercase();
        match key.as_str() {
            "sqlx" | "golang-migrate" | "golang_migrate" | "migrate" => Some(Layout::Native),
            _ => Layout::ALL.into_iter().find(|l| l.key() == key),
        }
    }

    /// Whether the layout's tool orders versions as text (diesel, dbmate, Prisma, Atlas sort
    /// names), not as numbers (shipgate, sqlx, golang-migrate, goose, Flyway).
    pub fn orders_versions_as_text(self) -> bool {
        matches!(
            self,
            Layout::Diesel | Layout::Dbmate | Layout::Prisma | Layout::Atlas
        )
    }

    /// How the layout cuts a file with sections, if it keeps any.
    pub fn sections(self) -> Option<CutSections> {
        self.def().sections
    }

    /// How the layout reads a settings file, if it keeps any.
    pub fn settings(self) -> Option<ReadSettings> {
        self.def().settings
    }

    /// The files (relative to the migrations directory) and texts of a new migration.
    pub fn template(self, new: &New<'_>) -> Vec<(String, String)> {
        (self.def().template)(new)
    }

    /// What the layout checks beyond names, if anything.
    pub fn checks(self) -> Option<&'static Checks> {
        CHECKS.iter().find(|c| c.layout == self)
    }

    /// What this layout checks in its scripts' statements, under `options`.
    pub fn statement_rules(self, options: &Options) -> Option<StatementRules> {
        (self == Layout::Flyway).then(|| options.flyway.statement_rules())
    }

    /// How this layout names a migration's up file, for messages.
    pub fn up_file_name(self, options: &Options, version: &str, name: &str) -> String {
        match self {
            Layout::Flyway => {
                let o = &options.flyway;
                let suffix = o.suffixes.first().map_or(".sql", String::as_str);
                format!(
                    "{}{version}{}{name}{suffix}",
                    o.versioned_prefix, o.separator
                )
            }
            _ => format!("{version}_{name}.up.sql"),
        }
    }

    fn def(self) -> &'static Def {
        LAYOUTS
            .iter()
            .find(|d| d.layout == self)
            .expect("every layout is registered in LAYOUTS")
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Native => "shipgate (sqlx/golang-migrate)",
            Layout::Atlas => "Atlas",
            Layout::Dbmate => "dbmate",
            Layout::Goose => "goose",
            Layout::Diesel => "diesel",
            Layout::Prisma => "Prisma",
            Layout::Flyway => "Flyway",
        })
    }
}

/// Which layout to read a directory in: detected from its entries, or the one configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// Detected from the directory (`layout = "auto"`, the default).
    #[default]
    Auto,
    /// Forced (`layout = "flyway"`): every migration-like entry must be in this layout.
    Forced(Layout),
}

impl Choice {
    /// The choice `key` names in configuration: `auto` or a layout's key.
    pub fn from_key(key: &str) -> Option<Choice> {
        if key.trim().eq_ignore_ascii_case("auto") {
            return Some(Choice::Auto);
        }
        Layout::from_key(key).map(Choice::Forced)
    }

    /// The accepted values, for error messages.
    pub const EXPECTED: &'static str =
        "auto, native (sqlx, golang-migrate), atlas, dbmate, goose, diesel, prisma or flyway";
}

/// How a directory is read: the layout choice and the settings of layouts whose names are
/// configurable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// Detected or forced.
    pub choice: Choice,
    /// Flyway's prefixes, separator, suffixes and statement settings.
    pub flyway: FlywayOptions,
}

impl From<Choice> for Options {
    fn from(choice: Choice) -> Options {
        Options {
            choice,
            ..Options::default()
        }
    }
}

impl From<&Options> for Options {
    fn from(options: &Options) -> Options {
        options.clone()
    }
}

/// What a layout checks in a script's statements once they are found (Flyway's, which decides
/// from them whether the file runs in a transaction, and replaces placeholders in them before
/// running it). Carried by the [`Script`](super::source::Script) from the listing to the
/// reading, so the every-deploy no-op, which splits nothing, never needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRules {
    /// The layout whose rules these are, for messages.
    pub layout: Layout,
    /// The statements decide whether the script runs in a transaction.
    pub transaction_by_statements: bool,
    /// With `transaction_by_statements`: a script whose statements disagree runs outside a
    /// transaction (Flyway's `mixed`) instead of being refused.
    pub mixed: bool,
    /// The tool's placeholder delimiters (prefix, suffix): one in the script's code is refused.
    pub placeholders: Option<(String, String)>,
}

impl StatementRules {
    /// Applies the rules to a script's statements, split by `rules`: `Ok(true)` when the
    /// statements put the script outside a transaction. `decide` is false when the script's
    /// own directives already do.
    pub fn apply(
        &self,
        statements: &[Statement],
        rules: split::Rules,
        decide: bool,
    ) -> Result<bool, Problem> {
        flyway::read_statements(self, statements, rules, decide)
    }
}

/// What a migration file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The forward script of a migration that has a down script.
    Up,
    /// The revert script.
    Down,
    /// The forward script of a migration that has no down script by design.
    Irreversible,
    /// A repeatable migration: run again whenever its checksum changes, after the versioned
    /// ones.
    Repeatable,
}

/// One entry of the migrations directory.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A file directly in the directory.
    File(&'a str),
    /// A subdirectory and the names of the entries in it.
    Dir(&'a str, &'a [String]),
}

impl Entry<'_> {
    /// The entry's name in the migrations directory.
    pub fn name(&self) -> &str {
        match self {
            Entry::File(name) | Entry::Dir(name, _) => name,
        }
    }
}

/// How a file a layout reads is to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The whole file is one script of this kind.
    Script(Kind),
    /// The file holds up and down sections ([`Def::sections`]).
    Sections,
    /// The file holds settings for the migration's scripts ([`Def::settings`]).
    Settings,
}

/// A directory entry as one layout reads it, decided from names alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The migration's version; `None` for a repeatable migration.
    pub version: Option<Version>,
    /// The version as the file name writes it (`1.2.10`, `2017-08-21-103021`), for messages.
    pub version_text: String,
    /// The migration's name (a repeatable's is its key).
    pub name: String,
    /// The files to read, relative to the migrations directory (`x/up.sql`), with their roles.
    pub files: Vec<(String, Role)>,
}

/// One script cut out of a file with sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Up or down.
    pub kind: Kind,
    /// What runs: the file's text with every line outside this section blanked (line breaks
    /// kept), so statement line numbers are the file's own.
    pub sql: String,
    /// The section's own text, which its checksum covers: an edit to the down section does not
    /// change the up section's checksum.
    pub text: String,
    /// The layout's marker says the section runs outside a transaction.
    pub no_transaction: bool,
}

/// A problem a layout found in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// Settings a layout keeps beside a migration's scripts (diesel's `metadata.toml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// The scripts run outside a transaction.
    pub no_transaction: bool,
}

/// Cuts a file's text into the sections that run.
pub type CutSections = fn(&str) -> Result<Vec<Section>, Problem>;

/// Reads a settings file's text.
pub type ReadSettings = fn(&str) -> Result<Settings, Problem>;

/// What one layout knows, registered in [`LAYOUTS`].
pub struct Def {
    /// The layout.
    pub layout: Layout,
    /// File names directly in the directory that only this layout keeps (`atlas.sum`): one
    /// present decides detection in its favour.
    pub own_files: &'static [&'static str],
    /// Detected only when one of its own files is there: its migrations look like another
    /// layout's (Atlas's files are named as shipgate's irreversible ones).
    pub needs_own_file: bool,
    /// The entry as one of this layout's migrations: `None` when it does not have the layout's
    /// shape, `Some(Err(reason))` when it has the shape but a bad name.
    pub claim: fn(Entry<'_>) -> Option<Result<Claim, String>>,
    /// Whether a claimed file's text carries this layout's own marks; `None` for layouts
    /// recognised by names alone. A layout with marks claims only marked files.
    pub marked: Option<fn(&str) -> bool>,
    /// Splits the text of a [`Role::Sections`] file into the scripts that run.
    pub sections: Option<CutSections>,
    /// Reads a [`Role::Settings`] file.
    pub settings: Option<ReadSettings>,
    /// The files `shipgate new` writes for a migration in this layout.
    pub template: fn(&New<'_>) -> Vec<(String, String)>,
}

/// A migration `shipgate new` is about to write.
#[derive(Debug, Clone, Copy)]
pub struct New<'a> {
    /// UTC time as `YYYYMMDDHHMMSS`, the version of layouts that number by timestamp.
    pub stamp: &'a str,
    /// One more than the highest version's first part, for layouts that number in sequence.
    pub next: u64,
    /// The migration's name, in snake case.
    pub name: &'a str,
    /// Whether to write a down script where the layout has them.
    pub down: bool,
    /// How the directory is read (Flyway's prefixes).
    pub options: &'a Options,
}

impl New<'_> {
    /// The comment a new up script opens with.
    fn up_comment(&self) -> String {
        format!(
            "-- {name}: write the forward migration here.\n\
             -- Until it holds SQL it is a no-op: `shipgate check` warns (empty-up) and a\n\
             -- release would record it as applied.\n",
            name = self.name
        )
    }

    /// The comment a new down script holds.
    fn down_comment(&self) -> String {
        format!(
            "-- Revert {}: undo the up script, newest change first.\n",
            self.name
        )
    }
}

/// What a layout checks beyond names: the whole directory against the tool's own file, and the
/// directives the tool reads in a script's own text. Registered in [`CHECKS`].
pub struct Checks {
    /// The layout.
    pub layout: Layout,
    /// The file the whole-directory check reads, directly in the directory (`atlas.sum`).
    pub own: &'static str,
    /// Which other files directly in the directory the check reads, by name (Atlas hashes
    /// every `*.sql`), migrations or not.
    pub reads: fn(&str) -> bool,
    /// The check: the own file's bytes (`None` when it is not there) and the files `reads`
    /// chose.
    pub whole: CheckWhole,
    /// The own file's text for the files `reads` chooses, which `shipgate new` writes after
    /// adding a migration (Atlas's sum); `None` when `new` leaves the own file alone.
    pub rewrite: Option<fn(&Listed<'_>) -> String>,
    /// Reads the directives the tool finds in a script's text as written (byte-order mark and
    /// line endings kept): settings for the script, or why the file cannot run as the tool
    /// would run it.
    pub directives: Option<ReadSettings>,
    /// Why the layout's migrations have no down scripts, for `down`'s refusal.
    pub no_downs: Option<&'static str>,
}

/// Files directly in the migrations directory, name and bytes, in name order.
pub type Listed<'a> = [(&'a str, &'a [u8])];

/// Checks the whole directory: the own file's bytes, if it is there, and the files listed.
pub type CheckWhole = fn(Option<&[u8]>, &Listed<'_>) -> Whole;

/// What a whole-directory check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whole {
    /// The engine the files are written for, when the own file names one (Prisma's provider).
    pub requires: Option<Requires>,
    /// What is wrong, in the own file.
    pub problems: Vec<DirProblem>,
}

/// The database a directory's files are written for, as the tool's own file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requires {
    /// The line of the own file that names it (1-based).
    pub line: usize,
    /// The name as written (`postgresql`).
    pub provider: String,
    /// The engine it names; `None` for one shipgate does not migrate (`sqlserver`).
    pub engine: Option<Engine>,
}

/// A problem a whole-directory check found in the layout's own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirProblem {
    /// The line of the own file (1-based), when the problem stands on one.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every layout that checks more than names. Kept beside [`LAYOUTS`] rather than in [`Def`]:
/// most layouts have none.
pub static CHECKS: &[Checks] = &[atlas::CHECKS, prisma::CHECKS];

/// Every layout shipgate reads. Adding one is a module and a line here.
pub static LAYOUTS: &[Def] = &[
    native::DEF,
    atlas::DEF,
    dbmate::DEF,
    goose::DEF,
    diesel::DEF,
    prisma::DEF,
    flyway::DEF,
];

/// The files of a listing one layout claims, found by [`detect`].
#[derive(Debug)]
pub struct Detected {
    /// The directory's layout.
    pub layout: Layout,
    /// Every migration entry, claimed by that layout, in entry name order.
    pub claims: Vec<Claim>,
    /// Entries that are not the layout's, each with why.
    pub problems: Vec<(String, Misfit)>,
    /// The `.sql` files directly in the directory whose text carries a goose or dbmate marker,
    /// or a CR (to be scanned again with its line endings normalised). Every `.sql` file whose
    /// text was given was scanned: one not named here has no marker.
    pub marked: std::collections::BTreeSet<String>,
}

/// Why an entry is not read in the directory's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// It has the layout's shape but a bad name.
    BadName {
        /// The layout whose name rules it breaks.
        layout: Layout,
        /// What is wrong with the name.
        reason: String,
    },
    /// Anything else: another layout's migration, two layouts' own files.
    Other(String),
}

/// Which layouts could read an entry.
struct Fits<'a> {
    entry: Entry<'a>,
    /// Layouts whose claim succeeded (marks checked), in [`Layout::ALL`] order.
    ok: Vec<(Layout, Claim)>,
    /// Layouts for which the entry has the shape but a bad name, with the reason.
    bad: Vec<(Layout, String)>,
}

/// Whether `source` reads file `name` of the migrations directory before detecting: the
/// layouts with marks (goose, dbmate) decide from the text of a `.sql` file.
pub fn read_to_detect(name: &str) -> bool {
    // Every `.sql` file directly in the directory is read anyway; reading them first costs
    // nothing more and lets the marks decide.
    strip_suffix_ignore_case(name, ".sql").is_some() && !name.starts_with('.')
}

/// `def`'s claim of `entry`: its own, or for a layout whose names are configurable (Flyway's),
/// the claim under the project's settings.
fn claim_of(def: &Def, entry: Entry<'_>, options: &Options) -> Option<Result<Claim, String>> {
    match def.layout {
        Layout::Flyway => flyway::claim(entry, &options.flyway),
        _ => (def.claim)(entry),
    }
}

/// Decides the directory's layout and claims its entries.
///
/// `text` gives a claimed file's text (relative path) when a layout with marks needs it;
/// `None` for a file that could not be read (it is reported by the reader). Entries claimed by
/// no layout (a README, a seeds directory) are not migrations and are left alone.
pub fn detect<'t>(
    files: &[String],
    dirs: &[(String, Vec<String>)],
    options: &Options,
    text: &dyn Fn(&str) -> Option<&'t str>,
) -> Detected {
    let choice = options.choice;
    let entries = files
        .iter()
        .map(|f| Entry::File(f))
        .chain(dirs.iter().map(|(d, e)| Entry::Dir(d, e)));
    let hinted: Vec<Layout> = LAYOUTS
        .iter()
        .filter(|d| d.own_files.iter().any(|own| files.iter().any(|f| f == own)))
        .map(|d| d.layout)
        .collect();
    // A layout that needs its own file, without it, reads nothing here (unless forced).
    let counts =
        |l: Layout| !l.def().needs_own_file || hinted.contains(&l) || choice == Choice::Forced(l);
    let mut fits: Vec<Fits<'_>> = Vec::new();
    let mut marked = std::collections::BTreeSet::new();
    for entry in entries {
        let mut fit = Fits {
            entry,
            ok: Vec::new(),
            bad: Vec::new(),
        };
        // A layout with marks claims a `.sql` file only when its text carries them, so a file
        // with none of goose's or dbmate's marks (one scan) skips their claims altogether.
        let unmarked = match entry {
            Entry::File(name) if strip_suffix_ignore_case(name, ".sql").is_some() => {
                let t = text(name);
                let has = t.is_some_and(|t| super::foreign::marker(t).is_some());
                // A CR may end a line the scan did not see as one (a lone CR): such a file is
                // scanned again after its line endings are normalised.
                if has || t.is_some_and(|t| t.contains('\r')) {
                    marked.insert(name.to_owned());
                }
                !has
            }
            _ => false,
        };
        for def in LAYOUTS {
            if !counts(def.layout) || (unmarked && def.marked.is_some()) {
                continue;
            }
            match claim_of(def, entry, options) {
                None => {}
                Some(Err(reason)) if counts(def.layout) => fit.bad.push((def.layout, reason)),
                Some(Err(_)) => {}
                Some(Ok(claim)) if counts(def.layout) => fit.ok.push((def.layout, claim)),
                Some(Ok(_)) => {}
            }
        }
        if fit.ok.is_empty() && fit.bad.is_empty() {
            continue;
        }
        mark(&mut fit, text);
        fits.push(fit);
    }
    let layout = match choice {
        Choice::Forced(layout) => layout,
        Choice::Auto => choose(&fits, &hinted),
    };
    let mut claims = Vec::new();
    let mut problems = Vec::new();
    if let (Choice::Auto, [first, second, ..]) = (choice, hinted.as_slice()) {
        problems.push((
            layout.def().own_files[0].to_owned(),
            Misfit::Other(format!(
                "the directory holds both {first}'s and {second}'s files; a directory is read in one layout (set `layout` to choose)"
            )),
        ));
    }
    for fit in fits {
        let name = match fit.entry {
            Entry::File(name) => name.to_owned(),
            Entry::Dir(name, _) => format!("{name}/"),
        };
        if let Some(i) = fit.ok.iter().position(|(l, _)| *l == layout) {
            let (_, claim) = fit.ok.into_iter().nth(i).expect("position found it");
            claims.push(claim);
            continue;
        }
        if ignored_by(layout, &fit) {
            continue;
        }
        let why = if let Some((other, _)) = fit.ok.first() {
            Misfit::Other(format!(
                "a {other} migration in a directory read as {layout}; a directory holds one tool's layout (move it, or set `layout` to the one the directory is in)"
            ))
        } else {
            // The directory's own layout's reason. In shipgate's own layout, whose shape is
            // every `.sql` name, another layout that recognised the name as its own kind of
            // file (`R__views.sql`, a goose `.go` migration) says more than "not a positive
            // integer"; in another tool's directory its own reason does (`V1.1__x.sql` in a
            // Flyway directory is not a misnamed `.up.sql` file).
            let own = fit.bad.iter().find(|(l, _)| *l == layout);
            // Layouts that name their files as shipgate does (goose, dbmate, Atlas) say
            // nothing more specific about them; a directory in another tool's layout
            // explains a bad name in that tool's terms.
            let distinctive = |l: &Layout| l.def().marked.is_none() && !l.def().needs_own_file;
            let specific = fit
                .bad
                .iter()
                .find(|(l, r)| *l != layout && distinctive(l) && own.is_none_or(|(_, o)| o != r));
            let pick = match own {
                Some(own) if layout != Layout::Native => Some(own),
                _ => specific.or(own),
            };
            let (layout, reason) = pick.unwrap_or(&fit.bad[0]).clone();
            Misfit::BadName { layout, reason }
        };
        problems.push((name, why));
    }
    Detected {
        layout,
        claims,
        problems,
        marked,
    }
}

/// Whether the directory's layout leaves `fit` alone as its tool does: an entry that is not
/// of the layout's shape at all (a loose `data.sql` beside diesel's or Prisma's migration
/// directories, a `seed.sql` among Flyway's `V…__` files) and that no layout reads as a
/// migration is never run by that tool, so it is not a migration here either. shipgate's own
/// layout keeps refusing such names: every `.sql` file is of its shape, and a typo must not
/// skip a migration silently.
fn ignored_by(layout: Layout, fit: &Fits<'_>) -> bool {
    layout != Layout::Native && fit.ok.is_empty() && (layout.def().claim)(fit.entry).is_none()
}

/// Drops the claims of layouts with marks whose marks the file's text lacks, and the native
/// claim of a file that carries another layout's marks (it would run a down section whole).
fn mark<'t>(fit: &mut Fits<'_>, text: &dyn Fn(&str) -> Option<&'t str>) {
    let marked_layouts: Vec<Layout> = fit
        .ok
        .iter()
        .filter(|(l, _)| l.def().marked.is_some())
        .map(|(l, _)| *l)
        .collect();
    if marked_layouts.is_empty() {
        return;
    }
    let Entry::File(name) = fit.entry else { return };
    let Some(text) = text(name) else {
        // Unreadable: the reader reports it; keep only the name-only claims.
        fit.ok.retain(|(l, _)| l.def().marked.is_none());
        return;
    };
    let has_marks: Vec<Layout> = marked_layouts
        .into_iter()
        .filter(|l| (l.def().marked.expect("filtered on marks"))(text))
        .collect();
    fit.ok
        .retain(|(l, _)| l.def().marked.is_none() || has_marks.contains(l));
    if !has_marks.is_empty() {
        fit.ok.retain(|(l, _)| l.def().marked.is_some());
    }
}

/// The layout a directory is in: the one whose own file is there, else the first (in
/// [`Layout::ALL`] order) that reads every migration entry, else the one that reads most.
///
/// Atlas's own file decides only when Atlas reads some entry, or no layout reads any: Atlas
/// keeps its `atlas.sum` beside directories in other tools' formats too
/// (`format=golang-migrate`: `.up.sql` and `.down.sql` files that golang-migrate runs), and
/// there the files say more than the sum file. (Atlas is the layout detected only by its own
/// file; Prisma's lock file belongs to Prisma's directories alone, so beside other files it
/// still decides, and they are named as misfits.)
fn choose(fits: &[Fits<'_>], hinted: &[Layout]) -> Layout {
    let reads = |layout: Layout| {
        fits.iter()
            .filter(|f| f.ok.iter().any(|(l, _)| *l == layout))
            .count()
    };
    let any_read = fits.iter().any(|f| !f.ok.is_empty());
    let decides = |l: Layout| !l.def().needs_own_file || reads(l) > 0 || !any_read;
    if let Some(&layout) = hinted.iter().find(|&&l| decides(l)) {
        return layout;
    }
    let reads_all = |layout: Layout| {
        let n = reads(layout);
        (n == fits.len() && n > 0).then_some(layout)
    };
    let detectable = || Layout::ALL.into_iter().filter(|l| !l.def().needs_own_file);
    detectable()
        .find_map(reads_all)
        .or_else(|| {
            detectable()
                .filter(|&l| reads(l) > 0)
                .max_by_key(|&l| (reads(l), std::cmp::Reverse(l)))
        })
        .unwrap_or(Layout::Native)
}

/// Whether a line-oriented marker begins `line`, compared as the tools compare it: ASCII case
/// ignored. Shared by the layouts that read markers.
fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `name` without `suffix`, compared ignoring ASCII case: `2_a.SQL` ends with `.sql`.
pub fn strip_suffix_ignore_case<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = name.len().checked_sub(suffix.len())?;
    // The bytes matched an ASCII suffix, so `cut` falls on a character boundary.
    name.as_bytes()[cut..]
        .eq_ignore_ascii_case(suffix.as_bytes())
        .then(|| &name[..cut])
}

/// Cuts `text` into sections at marker lines: `marker` says whether a line (as written,
/// without its line break) starts a section, and of what kind. Each [`Section`]'s `sql` is the
/// whole text with the lines outside the section blanked; text before the first marker (a
/// header of comments) runs with the first section when that is an up section, so directives
/// written there apply to it; it is not part of any section's checksum. Shared by goose and
/// dbmate.
fn cut_sections(
    text: &str,
    mut marker: impl FnMut(usize, &str) -> Result<Option<(Kind, bool)>, Problem>,
) -> Result<Vec<Section>, Problem> {
    // (kind, no_transaction, first byte of its first line, end byte)
    let mut spans: Vec<(Kind, bool, usize, usize)> = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some((kind, no_tx)) = marker(i + 1, bare)? {
            if let Some(last) = spans.last_mut() {
                last.3 = offset;
            }
            spans.push((kind, no_tx, offset, text.len()));
        }
        offset += line.len();
    }
    Ok(spans
        .into_iter()
        .enumerate()
        .map(|(i, (kind, no_transaction, start, end))| Section {
            kind,
            // The header (comments only, as both tools require) stays with the first up
            // section: `shipgate:` directives written there apply to it, never vanish.
            sql: blank_outside(
                text,
                if i == 0 && kind == Kind::Up { 0 } else { start },
                end,
            ),
            text: text[start..end].to_owned(),
            no_transaction,
        })
        .collect())
}

/// `text` with every line outside `start..end` emptied, its line break kept.
fn blank_outside(text: &str, start: usize, end: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let breaks = |s: &str, out: &mut String| {
        for b in s.bytes() {
            if b == b'\n' {
                out.push('\n');
            }
        }
    };
    breaks(&text[..start], &mut out);
    out.push_str(&text[start..end]);
    breaks(&text[end..], &mut out);
    out
}

/// The version and name of `<version>_<name><suffix>`, the version being digits. Shared by
/// the layouts whose files are named so (native, Atlas, dbmate, goose).
fn digits_and_name(stem: &str) -> Result<(&str, &str), String> {
    let Some((digits, name)) = stem.split_once('_') else {
        return Err("no `_` between version and name".into());
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("version `{digits}` is not a positive integer"));
    }
    if name.is_empty() {
        return Err("the name after the version is empty".into());
    }
    Ok((digits, name))
}

/// The claim of a `<version>_<name>.sql` file directly in the directory whose whole content
/// is read as `role`: the form Atlas, dbmate and goose name their files in. `.up.sql` and
/// `.down.sql` names are the native layout's and are not claimed.
fn numbered_sql_file(entry: Entry<'_>, role: Role) -> Option<Result<Claim, String>> {
    let Entry::File(file) = entry else {
        return None;
    };
    if file.starts_with('.') {
        return None;
    }
    let stem = strip_suffix_ignore_case(file, ".sql")?;
    if strip_suffix_ignore_case(stem, ".up").is_some()
        || strip_suffix_ignore_case(stem, ".down").is_some()
    {
        return None;
    }
    Some(digits_and_name(stem).and_then(|(digits, name)| {
        Ok(Claim {
            version: Some(version_of(digits)?),
            version_text: digits.to_owned(),
            name: name.to_owned(),
            files: vec![(file.to_owned(), role)],
        })
    }))
}

/// `digits` as a version.
fn version_of(digits: &str) -> Result<Version, String> {
    // Every timestamp and plain number: one part, read without the general parser.
    if let Ok(n) = digits.parse::<u64>() {
        return Ok(Version::from_int(n));
    }
    digits.parse::<Version>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_files(files: &[(&str, &str)], choice: Choice) -> Detected {
        let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        let text = |name: &str| files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
        detect(&names, &[], &choice.into(), &text)
    }

    #[test]
    fn detects_the_layout_from_names_and_marks() {
        let cases: &[(&[(&str, &str)], Layout)] = &[
            (&[], Layout::Native),
            (&[("1_a.up.sql", ""), ("1_a.down.sql", "")], Layout::Native),
            (&[("1_a.sql", "SELECT 1;")], Layout::Native),
            (
                &[("1_a.sql", "SELECT 1;"), ("atlas.sum", "h1:x")],
                Layout::Atlas,
            ),
            (
                &[("1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n")],
                Layout::Dbmate,
            ),
            (
                &[("00001_a.sql", "-- +goose Up\nSELECT 1;\n")],
                Layout::Goose,
            ),
            (&[("V1__a.sql", ""), ("U1__a.sql", "")], Layout::Flyway),
            // Repeatables are both layouts' own: the versioned files decide.
            (&[("1_a.up.sql", ""), ("R__views.sql", "")], Layout::Native),
            (&[("1_a.sql", ""), ("R__views.sql", "")], Layout::Native),
            (&[("V1__a.sql", ""), ("R__views.sql", "")], Layout::Flyway),
            (&[("R__views.sql", ""), ("R__z.sql", "")], Layout::Native),
        ];
        for (files, want) in cases {
            let d = detect_files(files, Choice::Auto);
            assert_eq!(d.layout, *want, "{files:?}");
            assert!(d.problems.is_empty(), "{files:?}: {:?}", d.problems);
        }
    }

    #[test]
    fn repeatables_are_claimed_without_a_version_in_both_layouts() {
        for (files, layout) in [
            (&[("1_a.up.sql", ""), ("R__views.sql", "")], Layout::Native),
            (&[("V1__a.sql", ""), ("R__views.sql", "")], Layout::Flyway),
        ] {
            let d = detect_files(files, Choice::Auto);
            assert_eq!(d.layout, layout);
            let r = d
                .claims
                .iter()
                .find(|c| c.version.is_none())
                .expect("the repeatable is claimed");
            assert_eq!(r.name, "views");
            assert_eq!(
                r.files,
                [("R__views.sql".to_owned(), Role::Script(Kind::Repeatable))]
            );
        }
        // A repeatable has no down: never read as one in the native layout.
        let d = detect_files(&[("1_a.up.sql", ""), ("R__v.down.sql", "")], Choice::Auto);
        assert_eq!(d.layout, Layout::Native);
        assert!(
            matches!(&d.problems[..], [(f, _)] if f == "R__v.down.sql"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn flyways_configured_prefixes_decide_detection() {
        let mut options = Options::default();
        options
            .flyway
            .set("sqlMigrationPrefix", "M")
            .expect("a prefix");
        let names = ["M1__a.sql".to_owned(), "R__v.sql".to_owned()];
        let d = detect(&names, &[], &options, &|_| None);
        assert_eq!(d.layout, Layout::Flyway);
        assert_eq!(d.claims.len(), 2);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
    }

    #[test]
    fn a_directory_that_mixes_layouts_names_the_odd_files() {
        let d = detect_files(
            &[
                ("1_a.sql", "-- +goose Up\nSELECT 1;\n"),
                ("2_b.sql", "-- +goose Up\nSELECT 2;\n"),
                ("3_c.sql", "SELECT 3;"),
            ],
            Choice::Auto,
        );
        assert_eq!(d.layout, Layout::Goose);
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert_eq!(d.problems[0].0, "3_c.sql");
        assert!(
            matches!(&d.problems[0].1, Misfit::Other(m) if m.contains("shipgate")),
            "{:?}",
            d.problems
        );

        let d = detect_files(&[("V1__a.sql", ""), ("2_b.up.sql", "")], Choice::Auto);
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    }

    /// Detects `files`, expecting `layout`, no problem and `claims` migrations.
    fn reads_cleanly(files: &[(&str, &str)], layout: Layout, claims: usize) {
        let d = detect_files(files, Choice::Auto);
        assert_eq!(d.layout, layout, "{files:?}");
        assert!(d.problems.is_empty(), "{files:?}: {:?}", d.problems);
        assert_eq!(d.claims.len(), claims, "{files:?}");
    }

    #[test]
    fn an_atlas_sum_beside_another_tools_files_does_not_decide() {
        // `atlas migrate diff --dir "file://m?format=golang-migrate"` keeps its sum file beside
        // golang-migrate's files, which golang-migrate runs.
        let golang_migrate = [
            ("20240826120919_init.up.sql", "CREATE TABLE a (id int);"),
            ("20240826120919_init.down.sql", "DROP TABLE a;"),
            ("atlas.sum", "h1:x"),
        ];
        reads_cleanly(&golang_migrate, Layout::Native, 2);
        // Atlas's own files, named with or without a description, are still Atlas's.
        let atlas = [
            ("1.sql", "SELECT 1;"),
            ("2_b.sql", "SELECT 2;"),
            ("atlas.sum", "h1:x"),
        ];
        reads_cleanly(&atlas, Layout::Atlas, 2);
        // A Prisma project without a migration yet is Prisma's.
        reads_cleanly(&[("migration_lock.toml", "")], Layout::Prisma, 0);
    }

    #[test]
    fn a_directory_layout_leaves_loose_files_alone_as_its_tool_does() {
        let up = vec!["up.sql".to_owned(), "down.sql".to_owned()];
        let files = vec!["README.md".to_owned(), "data_backfill.sql".to_owned()];
        let dirs = vec![
            ("2024-01-01-000000_a".to_owned(), up.clone()),
            ("2024-01-02-000000_b".to_owned(), up),
        ];
        let d = detect(&files, &dirs, &Options::from(Choice::Auto), &|_| None);
        assert_eq!(d.layout, Layout::Diesel);
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(d.claims.len(), 2);

        reads_cleanly(&[("V1__a.sql", ""), ("seed.sql", "")], Layout::Flyway, 1);

        // shipgate's own layout still refuses a `.sql` name it cannot read: a typo must not
        // skip a migration.
        let d = detect_files(&[("1_a.sql", ""), ("data_backfill.sql", "")], Choice::Auto);
        assert_eq!(d.layout, Layout::Native);
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        // A file that is a migration of another layout is still named.
        let d = detect_files(&[("V1__a.sql", ""), ("2_b.up.sql", "")], Choice::Auto);
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
    }

    #[test]
    fn a_bad_name_is_explained_in_the_directorys_own_layout() {
        let reasons = |files: &[(&str, &str)]| -> Vec<(String, Layout, String)> {
            detect_files(files, Choice::Auto)
                .problems
                .into_iter()
                .map(|(name, why)| match why {
                    Misfit::BadName { layout, reason } => (name, layout, reason),
                    other => panic!("{name}: {other:?}"),
                })
                .collect()
        };
        // In a Flyway directory, Flyway's reasons, not "expected <version>_<name>.up.sql".
        let found = reasons(&[("V1__a.sql", ""), ("V1.1__b.sql", ""), ("B2__base.sql", "")]);
        assert_eq!(found.len(), 1, "{found:?}");
        for (name, layout, reason) in &found {
            assert_eq!(*layout, Layout::Flyway, "{name}: {reason}");
        }
        assert!(found[0].2.contains("baseline"), "{found:?}");
        // In shipgate's own, the layout that knows the name says what it is.
        let found = reasons(&[("1_a.up.sql", ""), ("B2__base.sql", "")]);
        assert_eq!(found[0].1, Layout::Flyway, "{found:?}");
        assert!(found[0].2.contains("baseline"), "{found:?}");
    }

    #[test]
    fn a_forced_layout_reports_every_entry_it_does_not_read() {
        let d = detect_files(
            &[("1_a.up.sql", ""), ("V2__b.sql", "")],
            Choice::Forced(Layout::Flyway),
        );
        assert_eq!(d.layout, Layout::Flyway);
        assert_eq!(d.claims.len(), 1);
        assert_eq!(d.problems[0].0, "1_a.up.sql");
    }

    #[test]
    fn reads_layout_keys() {
        assert_eq!(Choice::from_key("auto"), Some(Choice::Auto));
        assert_eq!(
            Choice::from_key("Flyway"),
            Some(Choice::Forced(Layout::Flyway))
        );
        assert_eq!(
            Choice::from_key("sqlx"),
            Some(Choice::Forced(Layout::Native))
        );
        assert_eq!(Choice::from_key("liquibase"), None);
    }

    #[test]
    fn sections_keep_the_files_line_numbers() {
        let text = "-- header\n-- up\nSELECT 1;\n-- down\nSELECT 2;\n";
        let sections = cut_sections(text, |_, line| {
            Ok(match line {
                "-- up" => Some((Kind::Up, false)),
                "-- down" => Some((Kind::Down, false)),
                _ => None,
            })
        })
        .expect("no problem");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].sql, "-- header\n-- up\nSELECT 1;\n\n\n");
        assert_eq!(sections[0].text, "-- up\nSELECT 1;\n");
        assert_eq!(sections[1].sql, "\n\n\n-- down\nSELECT 2;\n");
    }
}
