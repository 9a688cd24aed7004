//! Migration files → a validated, ordered [`MigrationSet`]: versioned migrations by version,
//! repeatable ones ([`Repeatable`], `R__<name>.sql`) by name.
//!
//! Owns the native layout of SPEC §3 (`<version>_<name>.up.sql` / `.down.sql` / `.sql`, the
//! extension in any case), the `shipgate:` directives, and the normalised SHA-256 checksum.
//! [`parse`] is pure: it takes file names and bytes and never touches the disk; [`load`] is the
//! one function that does, so tests can feed any layout as data. Every problem is collected
//! (one error per problem, each naming the file) rather than stopping at the first. Another
//! tool's layout (see [`foreign`](super::foreign)) is a problem, never a directory with
//! nothing in it; only regular files up to [`MAX_FILE_SIZE`] are read.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};

use super::foreign;
use super::layout::{
    self, Detected, Kind, Layout, Misfit, Options, Role, Settings, StatementRules,
};
use super::split::{self, Statement};
use crate::config::Engine;

pub use crate::version::Version;

/// Every migration found in a directory, ordered by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    /// The directory the files came from.
    pub dir: PathBuf,
    /// The layout the directory is in (detected or configured).
    pub layout: Layout,
    /// Migrations in ascending version order; versions are unique.
    pub migrations: Vec<Migration>,
    /// The engine the files are written for, when the layout's own file names one (Prisma's
    /// `migration_lock.toml`): [`MigrationSet::check_engine`] refuses any other database.
    pub requires: Option<Requirement>,
    /// Where the directory's own tool would apply two migrations in the other order: diesel,
    /// dbmate, Prisma and Atlas order versions as text (`20240313` after `20240306…`), shipgate
    /// as numbers; they differ when versions have different numbers of digits. Said by `check`
    /// and by a run with pending migrations, never silently.
    pub order_warning: Option<String>,
    /// Repeatable migrations in name order; names are unique.
    pub repeatables: Vec<Repeatable>,
}

/// The database engine a directory's files are written for, as its layout's own file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The file that says so (`migrations/migration_lock.toml`).
    pub file: PathBuf,
    /// Its line that names the engine.
    pub line: usize,
    /// The layout whose file it is.
    pub layout: Layout,
    /// The engine's name as the file writes it (`postgresql`).
    pub provider: String,
    /// The engine it names; `None` for one shipgate does not migrate.
    pub engine: Option<Engine>,
}

impl Requirement {
    /// Why the files cannot run on `engine`'s database, if they cannot.
    fn refuses(&self, engine: Engine) -> Option<SourceError> {
        let problem = match self.engine {
            Some(wants) if wants == engine => return None,
            Some(wants) => format!(
                "provider \"{}\": the migrations are written for {wants}, but the database shipgate migrates is {engine} (the database URL's engine); point the URL at a {wants} database, or use migrations generated for {engine}",
                self.provider
            ),
            None => format!(
                "provider \"{}\": shipgate does not migrate that engine (only postgresql, mysql and sqlite), and the database shipgate migrates is {engine}",
                self.provider
            ),
        };
        Some(SourceError::LayoutFile {
            file: self.file.clone(),
            line: self.line,
            layout: self.layout,
            problem,
        })
    }
}

impl MigrationSet {
    /// The set with the up and down scripts of `versions` and the scripts of the repeatables
    /// named `repeatables` read by `engine`'s rules (statements found, transaction control
    /// checked), as [`load`] would have read them. Scripts already read are kept as they are.
    pub fn read<'n>(
        &self,
        versions: impl IntoIterator<Item = Version>,
        repeatables: impl IntoIterator<Item = &'n str>,
        rules: impl Into<split::Rules>,
    ) -> Result<MigrationSet, SourceErrors> {
        let rules = rules.into();
        let mut set = self.clone();
        let mut errors = Vec::new();
        for v in versions {
            let Ok(i) = set.migrations.binary_search_by(|m| m.version.cmp(&v)) else {
                continue;
            };
            let m = &mut set.migrations[i];
            read_body(&mut m.up, rules, &mut errors);
            if let Some(down) = m.down.as_mut() {
                read_body(down, rules, &mut errors);
            }
        }
        for name in repeatables {
            let found = set
                .repeatables
                .binary_search_by(|r| r.name.as_str().cmp(name));
            if let Ok(i) = found {
                read_body(&mut set.repeatables[i].script, rules, &mut errors);
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(SourceErrors(errors))
        }
    }

    /// The migration with this version, if the set has it.
    pub fn get(&self, version: &Version) -> Option<&Migration> {
        self.migrations
            .binary_search_by(|m| m.version.cmp(version))
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The highest version in the set.
    pub fn head(&self) -> Option<Version> {
        self.migrations.last().map(|m| m.version.clone())
    }

    /// Refuses a set whose files are written for another engine than `engine`, the database's
    /// ([`MigrationSet::requires`]). [`load`] checks it against the engine it reads for;
    /// [`load_unread`], which reads for none, leaves it to its caller.
    pub fn check_engine(&self, engine: Engine) -> Result<(), SourceErrors> {
        match self.requires.as_ref().and_then(|r| r.refuses(engine)) {
            Some(e) => Err(SourceErrors(vec![e])),
            None => Ok(()),
        }
    }

    /// The repeatable migration with this name, if the set has it.
    pub fn repeatable(&self, name: &str) -> Option<&Repeatable> {
        self.repeatables
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.repeatables[i])
    }
}

/// A repeatable migration: no version, applied again (after the versioned migrations) whenever
/// its checksum differs from the one recorded when it last ran.
#[derive(Debug, Clone)]
pub struct Repeatable {
    /// The name from the file name (`R__<name>.sql`): the key its runs are recorded under.
    pub name: String,
    /// Lower-case hex SHA-256 of the file after normalisation, as for versioned files.
    pub checksum: String,
    /// The script.
    pub script: Script,
}

/// One migration: an up script, an optional down script, and the checksum of the up file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The numeric version from the file name.
    pub version: Version,
    /// The rest of the file name, as written.
    pub name: String,
    /// Lower-case hex SHA-256 of the up file after normalisation (LF line endings, no BOM).
    pub checksum: String,
    /// The forward script.
    pub up: Script,
    /// The revert script (`.down.sql`), when there is one.
    pub down: Option<Script>,
}

/// One SQL file, normalised, with its directives and statements.
#[derive(Debug, Clone)]
pub struct Script {
    /// Path of the file, as found in the directory.
    pub path: PathBuf,
    /// The SQL to send when the file runs in one transaction: the file's bytes (less a BOM;
    /// line endings as written), except that a `BEGIN; … COMMIT;` wrapper written by hand
    /// (golang-migrate style) is cut out because shipgate opens the transaction itself.
    pub sql: String,
    /// The statements, in order, split by the rules of the engine the set was read for, as
    /// the no-transaction path runs them. Empty until the script is [read](Script::read).
    pub statements: Vec<Statement>,
    /// Directives from the file's comments.
    pub directives: Directives,
    /// Whether the statements were found (and `sql` unwrapped). [`load`] reads every script;
    /// [`load_unread`], for the every-deploy path, reads none, and
    /// [`MigrationSet::read`] reads those that will run.
    pub read: bool,
    /// What the file's layout checks in its statements once they are found (Flyway decides
    /// from them whether the file runs in a transaction): applied when the script is read,
    /// which may set `directives.no_transaction`, so only a read script's directives say for
    /// certain how it runs.
    pub statement_rules: Option<StatementRules>,
}

impl Script {
    /// Whether the file holds no SQL statement (only comments and white space): an up file is
    /// a deliberate no-op, a down file declares its migration irreversible. Only meaningful
    /// once the script is read.
    pub fn is_empty(&self) -> bool {
        debug_assert!(self.read, "{} was not read", self.path.display());
        self.statements.is_empty()
    }
}

/// The `shipgate:` directives of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    /// `-- shipgate:no-transaction` (or sqlx's `-- no-transaction` first line).
    pub no_transaction: bool,
    /// `-- shipgate:lock-timeout <duration>`.
    pub lock_timeout: Option<Duration>,
    /// `-- shipgate:statement-timeout <duration>`.
    pub statement_timeout: Option<Duration>,
    /// `-- shipgate:contract`: a destructive step held back until contract migrations are allowed.
    pub contract: bool,
    /// `-- shipgate:allow <rule-id> <reason>` acknowledgements, for the linter.
    pub allows: Vec<Allow>,
}

/// One acknowledged lint finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The rule id being acknowledged.
    pub rule: String,
    /// Why it is acceptable here.
    pub reason: String,
    /// The line of the directive (1-based).
    pub line: usize,
}

/// The longest lock or statement timeout every engine accepts: PostgreSQL's `lock_timeout` and
/// `statement_timeout` and SQLite's `busy_timeout` are 32-bit milliseconds. Longer values are
/// refused while validating, before anything is sent, rather than by the server mid-run.
pub const MAX_SERVER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How errors describe [`MAX_SERVER_TIMEOUT`].
pub const MAX_SERVER_TIMEOUT_TEXT: &str =
    "longest timeout the databases accept: at most 24d 20h 31m 23s 647ms (2147483647ms)";

/// The largest migration file read: far beyond any hand-written migration (a 1000-migration
/// project is a few MiB in all), small enough that a stray dump or a link to a device cannot
/// take the memory of a deploy job.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// One problem with the migration files. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The directory itself could not be listed.
    #[error("cannot read migrations directory {}: {source}", dir.display())]
    UnreadableDir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("{}: cannot read file: {source}", file.display())]
    UnreadableFile {
        /// The file.
        file: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A `.sql` file whose name is not a migration name.
    #[error("{}: bad migration file name: {reason} (expected <version>_<name>.up.sql, <version>_<name>.down.sql or <version>_<name>.sql with a positive integer version)", file.display())]
    BadFileName {
        /// The file.
        file: PathBuf,
        /// What is wrong with the name.
        reason: String,
    },
    /// Two up files share a version.
    #[error("{}: duplicate version {version}, also used by {}", file.display(), other.display())]
    DuplicateVersion {
        /// The file.
        file: PathBuf,
        /// The shared version.
        version: Version,
        /// The other file with that version.
        other: PathBuf,
    },
    /// Two repeatable migrations share a name.
    #[error("{}: duplicate repeatable migration `{name}`, also used by {}", file.display(), other.display())]
    DuplicateRepeatable {
        /// The file.
        file: PathBuf,
        /// The shared name.
        name: String,
        /// The other file with that name.
        other: PathBuf,
    },
    /// A down file without an up file of the same version and name.
    #[error("{}: down file without an up file (expected {expected} beside it)", file.display())]
    DownWithoutUp {
        /// The down file.
        file: PathBuf,
        /// The up file name it needs.
        expected: String,
    },
    /// A migration name that is not a regular file once links are followed (a FIFO would block
    /// the read, a device would be read without end).
    #[error("{}: not a regular file ({kind}); only regular files are read as migrations", file.display())]
    NotRegularFile {
        /// The file.
        file: PathBuf,
        /// What it is instead, e.g. "a FIFO".
        kind: &'static str,
    },
    /// A symbolic link whose target does not exist.
    #[error("{}: dangling symbolic link to {}", file.display(), target.display())]
    DanglingLink {
        /// The link.
        file: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A file larger than [`MAX_FILE_SIZE`].
    #[error("{}: larger than the {} MiB limit for a migration file ({size} bytes)", file.display(), MAX_FILE_SIZE >> 20)]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Its size, or at least how much was there to read.
        size: u64,
    },
    /// An entry the directory's layout does not read: another layout's file, or a bad name.
    #[error("{}: {problem}", file.display())]
    Layout {
        /// The file or subdirectory.
        file: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A problem in a file of another tool's layout, found by that layout's rules (a goose
    /// annotation out of place, a dbmate file without a down section).
    #[error("{}:{line}: {problem} ({layout} layout)", file.display())]
    LayoutFile {
        /// The file.
        file: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The layout.
        layout: Layout,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A goose or dbmate section marker: run whole, the file's down section would run right
    /// after its up section.
    #[error("{}:{line}: `{marker}` marks a {layout} file with up and down sections, but the directory is read in the {read_as} layout, which never runs such a file whole (its down section would run too): set `layout` to `{}` or `auto`, or split the file", file.display(), layout.key())]
    ForeignMarker {
        /// The file.
        file: PathBuf,
        /// The line of the first marker.
        line: usize,
        /// The tool whose marker it is.
        layout: Layout,
        /// The layout the directory is read in.
        read_as: Layout,
        /// The marker line as written.
        marker: String,
    },
    /// The file is not UTF-8.
    #[error("{}: not valid UTF-8 (invalid byte at offset {offset})", file.display())]
    NotUtf8 {
        /// The file.
        file: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The file holds a NUL byte: no server reads past one (SQLite stops there), so what would
    /// run is not what the file says.
    #[error("{}: NUL byte on line {line} (offset {offset}): a migration file is text, and the database would stop reading it there", file.display())]
    NulByte {
        /// The file.
        file: PathBuf,
        /// The line it stands on (1-based).
        line: usize,
        /// Its byte offset.
        offset: usize,
    },
    /// A down file beside an up file of its version that it does not pair with.
    #[error("{}: down file does not pair with {}: {fix}", file.display(), up.display())]
    DownNotPaired {
        /// The down file.
        file: PathBuf,
        /// The up file of the same version.
        up: PathBuf,
        /// What to rename.
        fix: String,
    },
    /// A `shipgate:` directive shipgate does not know.
    #[error("{}:{line}: unknown directive `shipgate:{name}` (known: no-transaction, lock-timeout, statement-timeout, contract, allow)", file.display())]
    UnknownDirective {
        /// The file.
        file: PathBuf,
        /// The line of the directive.
        line: usize,
        /// The directive's name.
        name: String,
    },
    /// A known directive with a bad argument or in the wrong place.
    #[error("{}:{line}: directive `shipgate:{name}`: {problem}", file.display())]
    BadDirective {
        /// The file.
        file: PathBuf,
        /// The line of the directive.
        line: usize,
        /// The directive's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// `COMMIT`, `ROLLBACK` or a stray `BEGIN` inside a file that runs in shipgate's transaction.
    #[error("{}:{line}: `{keyword}` in a migration that runs inside shipgate's transaction; remove it, or mark the file `-- shipgate:no-transaction` if it must manage transactions itself", file.display())]
    TransactionControl {
        /// The file.
        file: PathBuf,
        /// The line of the statement.
        line: usize,
        /// The statement's first keyword.
        keyword: String,
    },
}

impl SourceError {
    /// A problem a layout found in `file`'s text, by its rules.
    fn in_layout_file(file: PathBuf, layout: Layout, p: layout::Problem) -> SourceError {
        SourceError::LayoutFile {
            file,
            line: p.line,
            layout,
            problem: p.message,
        }
    }
}

/// Every problem found in a directory, in file order.
#[derive(Debug)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in migration files",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

/// Reads and validates the migrations in `dir`: the only function here that touches the disk.
///
/// The every-deploy path reads and hashes every file: each is opened relative to the
/// directory and read with one `read` sized by its `fstat` (openat, fstat, read, close), the
/// `.sql` files on two threads in two halves, and the result is what [`parse_as`] gives for the
/// same bytes. Statements are split by `engine`'s rules.
pub fn load(
    dir: &Path,
    layout: impl Into<Options>,
    engine: Engine,
) -> Result<MigrationSet, SourceErrors> {
    load_with(dir, &layout.into(), Reading::Statements(engine))
}

/// [`load`] without finding statements: files are read, validated (names, encoding,
/// directives, pairs) and hashed, which is all the every-deploy no-op needs. The scripts that
/// will run are read afterwards with [`MigrationSet::read`].
pub fn load_unread(dir: &Path, layout: impl Into<Options>) -> Result<MigrationSet, SourceErrors> {
    load_with(dir, &layout.into(), Reading::Deferred)
}

/// Whether loading finds each script's statements now.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// Split by this engine's rules, transaction control checked.
    Statements(Engine),
    /// Later, for the scripts that run ([`MigrationSet::read`]).
    Deferred,
}

fn load_with(
    dir: &Path,
    options: &Options,
    reading: Reading,
) -> Result<MigrationSet, SourceErrors> {
    let Listing {
        files,
        dirs,
        problems,
    } = list(dir)?;
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        SourceErrors(vec![SourceError::UnreadableDir {
            dir: dir.to_owned(),
            source: e.into(),
        }])
    })?;
    // The files read before the layout is known (all `.sql` files directly in the directory,
    // in name order: the order `read_set` asks for them) are read on two threads, the second
    // taking the later half; `read` hands them out in order and reads anything else itself.
    let first: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| layout::read_to_detect(f))
        .collect();
    let mut early = read_split(&dir_fd, &first).into_iter();
    let mut next = early.next();
    let mut buf = Vec::new();
    let read = |path: &str| -> Result<Vec<u8>, Unread> {
        if let Some((name, _)) = &next {
            if *name == path {
                let taken = next.take().map(|(_, bytes)| bytes);
                next = early.next();
                if let Some(bytes) = taken {
                    return bytes;
                }
            }
        }
        read_at(&dir_fd, path, &mut buf)?;
        Ok(std::mem::take(&mut buf))
    };
    read_set(dir, &files, &dirs, problems, options, reading, read)
}

/// Reads `names` of the open directory `dir`, in order, on two threads when there are enough
/// of them to pay for the second thread: the system calls of 1000 files are the largest part
/// of a no-op's critical path, and the connection it overlaps with mostly waits on the server
/// (about 1 ms of a 15 ms no-op with 1000 files: bench/noop.md).
fn read_split<'n>(
    dir: &rustix::fd::OwnedFd,
    names: &[&'n str],
) -> Vec<(&'n str, Result<Vec<u8>, Unread>)> {
    let read_all = |names: &[&'n str]| {
        let mut buf = Vec::new();
        names
            .iter()
            .map(|&name| {
                let bytes = read_at(dir, name, &mut buf).map(|()| std::mem::take(&mut buf));
                (name, bytes)
            })
            .collect::<Vec<_>>()
    };
    if names.len() < SPLIT_READ_MIN {
        return read_all(names);
    }
    let (head, tail) = names.split_at(names.len() / 2);
    std::thread::scope(|scope| {
        let later = std::thread::Builder::new()
            .name("shipgate-read".into())
            .spawn_scoped(scope, || read_all(tail));
        let mut out = read_all(head);
        match later.map(|h| h.join()) {
            Ok(Ok(rest)) => out.extend(rest),
            // No second thread (or it panicked, which read_at does not): read the rest here.
            _ => out.extend(read_all(tail)),
        }
        out
    })
}

/// Fewer files than this are read on one thread: starting a thread costs more than it saves.
const SPLIT_READ_MIN: usize = 64;

/// The files and subdirectories of a migrations directory, before any is read.
struct Listing {
    /// Names of the entries that are not directories, sorted.
    files: Vec<String>,
    /// Subdirectories with the names of their entries, sorted.
    dirs: Vec<(String, Vec<String>)>,
    /// Non-UTF-8 names that claim to be migrations.
    problems: Vec<SourceError>,
}

/// Lists `dir` and each subdirectory in it (diesel and Prisma keep a migration in one). Hidden
/// entries are skipped. A subdirectory that cannot be listed is left alone like any other
/// non-migration entry (a `lost+found`, say): only its listing could say it is one.
fn list(dir: &Path) -> Result<Listing, SourceErrors> {
    let unreadable = |source| {
        SourceErrors(vec![SourceError::UnreadableDir {
            dir: dir.to_owned(),
            source,
        }])
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            // A name that is not UTF-8 cannot be a migration name; say so if it claims to be one.
            let lossy = entry.file_name().to_string_lossy().into_owned();
            if is_sql_file_name(&lossy) {
                problems.push(SourceError::BadFileName {
                    file: entry.path(),
                    reason: "the file name is not valid UTF-8".into(),
                });
            }
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        // The entry's type comes with the listing; only a link costs a stat, to see whether
        // it leads to a directory.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        if is_dir {
            let Ok(listing) = std::fs::read_dir(entry.path()) else {
                continue;
            };
            let mut entries: Vec<String> = listing
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect();
            entries.sort_unstable();
            dirs.push((name, entries));
        } else {
            files.push(name);
        }
    }
    files.sort_unstable();
    dirs.sort_unstable();
    Ok(Listing {
        files,
        dirs,
        problems,
    })
}

/// Whether a directory entry is a native migration file at all: other files (a README, `.keep`,
/// another tool's sum file) are not. The extension is read in any case (`2_a.SQL`): the server
/// does not care, and a skipped migration is a deploy that silently did not happen.
pub fn is_sql_file_name(name: &str) -> bool {
    layout::strip_suffix_ignore_case(name, ".sql").is_some() && !name.starts_with('.')
}

/// Whether a migration file name is a down file (`.down.sql` in any case).
pub fn is_down_file_name(name: &str) -> bool {
    layout::strip_suffix_ignore_case(name, ".down.sql").is_some()
}

/// Why a listed file could not be read, before its path is attached.
enum Unread {
    Io(std::io::Error),
    NotRegular(&'static str),
    Dangling(PathBuf),
    TooLarge(u64),
}

impl Unread {
    fn into_error(self, file: PathBuf) -> SourceError {
        match self {
            Unread::Io(source) => SourceError::UnreadableFile { file, source },
            Unread::NotRegular(kind) => SourceError::NotRegularFile { file, kind },
            Unread::Dangling(target) => SourceError::DanglingLink { file, target },
            Unread::TooLarge(size) => SourceError::TooLarge { file, size },
        }
    }
}

impl From<std::io::Error> for Unread {
    fn from(e: std::io::Error) -> Self {
        Unread::Io(e)
    }
}

impl From<rustix::io::Errno> for Unread {
    fn from(e: rustix::io::Errno) -> Self {
        Unread::Io(e.into())
    }
}

/// Reads file `name` of the open directory `dir` into `buf` (cleared first), if it is a
/// regular file (links followed) of at most [`MAX_FILE_SIZE`] bytes. Opening relative to the
/// directory skips the walk of the whole path for every file (0.9 ms of a 15 ms no-op run with
/// 1000 files); the `fstat` on the open descriptor tells a FIFO or a device from a file without
/// a second lookup, and its size lets one `read` get the whole file and prove the end (the
/// fallback reads through `Take`, which skips the `statx` and `lseek` that `File::read_to_end`
/// spends on sizing a buffer that is already large enough).
fn read_at(dir: &rustix::fd::OwnedFd, name: &str, buf: &mut Vec<u8>) -> Result<(), Unread> {
    use rustix::fs::FileType;
    use std::io::Read;
    buf.clear();
    // NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever and deaf to
    // signals (it changes nothing for a regular file); NOCTTY: a terminal never becomes ours.
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(dangling(dir, name)),
        Err(e) => return Err(e.into()),
    };
    let stat = rustix::fs::fstat(&fd)?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => None,
        FileType::Fifo => Some("a FIFO"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Socket => Some("a socket"),
        FileType::Directory => Some("a directory"),
        _ => Some("not a file"),
    };
    if let Some(kind) = kind {
        return Err(Unread::NotRegular(kind));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > MAX_FILE_SIZE {
        return Err(Unread::TooLarge(size));
    }
    let file = std::fs::File::from(fd);
    // Sized once: the buffer is handed on with the file's bytes, so each read starts empty.
    let want = usize::try_from(size).unwrap_or(0).saturating_add(1);
    // One read of one byte more than fstat's size: getting exactly the size back is the end of
    // the file, so the second read that would only return 0 is not made (1000 system calls in
    // a no-op with 1000 files). Anything else (a file that changed since the fstat, a file
    // system that reads short) falls through to reading until the end, as before.
    let first = first_read(&file, buf, want)?;
    // A size of 0 proves nothing (files of /proc say 0 and have text): read to the end.
    if first == size && size > 0 {
        return Ok(());
    }
    // One byte past the limit tells a file that grew after the fstat from one that did not.
    (&file)
        .take((MAX_FILE_SIZE + 1).saturating_sub(first))
        .read_to_end(buf)?;
    let read = buf.len() as u64;
    if read > MAX_FILE_SIZE {
        return Err(Unread::TooLarge(read));
    }
    Ok(())
}

/// One `read` into `buf`'s spare capacity (at least `want` bytes, left uninitialised: no
/// zeroing of bytes the kernel overwrites), retried when interrupted; returns how many bytes it
/// appended.
fn first_read(file: &std::fs::File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<u64> {
    buf.reserve(want);
    loop {
        match rustix::io::read(file, rustix::buffer::spare_capacity(buf)) {
            Ok(n) => return Ok(n as u64),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Why a listed name could not be opened with "no such file": a link to nothing, or (when it
/// is not a link) a file removed since the listing.
fn dangling(dir: &rustix::fd::OwnedFd, name: &str) -> Unread {
    use rustix::fs::{AtFlags, FileType};
    let gone = || Unread::Io(rustix::io::Errno::NOENT.into());
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
            match rustix::fs::readlinkat(dir, name, Vec::new()) {
                Ok(target) => {
                    use std::os::unix::ffi::OsStringExt;
                    let target = std::ffi::OsString::from_vec(target.into_bytes());
                    Unread::Dangling(PathBuf::from(target))
                }
                Err(_) => gone(),
            }
        }
        _ => gone(),
    }
}

/// Validates `files` (name, contents) found in `dir` into a [`MigrationSet`], splitting
/// statements by PostgreSQL's rules and detecting the layout. Pure.
pub fn parse(dir: &Path, files: Vec<(String, Vec<u8>)>) -> Result<MigrationSet, SourceErrors> {
    parse_as(Engine::Postgres, dir, files)
}

/// [`parse`], splitting statements by `engine`'s rules. A name with a `/` is a file in a
/// subdirectory (`2021_init/migration.sql`). Pure.
pub fn parse_as(
    engine: Engine,
    dir: &Path,
    files: Vec<(String, Vec<u8>)>,
) -> Result<MigrationSet, SourceErrors> {
    parse_in(engine, layout::Choice::Auto, dir, files)
}

/// [`parse_as`] in the layout `layout` says. Pure.
pub fn parse_in(
    engine: Engine,
    layout: impl Into<Options>,
    dir: &Path,
    mut files: Vec<(String, Vec<u8>)>,
) -> Result<MigrationSet, SourceErrors> {
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut top = Vec::new();
    let mut dirs: Vec<(String, Vec<String>)> = Vec::new();
    for (name, _) in &files {
        match name.split_once('/') {
            None => top.push(name.clone()),
            Some((d, entry)) => match dirs.iter_mut().find(|(n, _)| n == d) {
                Some((_, entries)) => entries.push(entry.to_owned()),
                None => dirs.push((d.to_owned(), vec![entry.to_owned()])),
            },
        }
    }
    let read = |path: &str| -> Result<Vec<u8>, Unread> {
        files
            .iter()
            .find(|(n, _)| n == path)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| Unread::Io(std::io::ErrorKind::NotFound.into()))
    };
    read_set(
        dir,
        &top,
        &dirs,
        Vec::new(),
        &layout.into(),
        Reading::Statements(engine),
        read,
    )
}

/// The one reading of a listed directory, for [`load`] and [`parse`]: detects the layout
/// (reading the files a layout with marks needs to see), reads each claimed file once, cuts
/// sections, and assembles the set.
fn read_set(
    dir: &Path,
    files: &[String],
    dirs: &[(String, Vec<String>)],
    mut errors: Vec<SourceError>,
    options: &Options,
    reading: Reading,
    mut read: impl FnMut(&str) -> Result<Vec<u8>, Unread>,
) -> Result<MigrationSet, SourceErrors> {
    // Files directly in the directory are read before the layout is known: goose's and
    // dbmate's are told from the others by their text. Each file is read once.
    let mut contents: BTreeMap<String, Result<Vec<u8>, Unread>> = BTreeMap::new();
    for name in files.iter().filter(|f| layout::read_to_detect(f)) {
        let bytes = read(name);
        contents.insert(name.clone(), bytes);
    }
    let detected = {
        // Borrowed from `contents` while detecting; nothing is copied.
        let texts: BTreeMap<&str, &str> = contents
            .iter()
            .filter_map(|(n, b)| Some((n.as_str(), decode(b.as_ref().ok()?).ok()?)))
            .collect();
        layout::detect(files, dirs, options, &|name| texts.get(name).copied())
    };
    let Detected {
        layout: found,
        claims,
        problems,
        marked,
    } = detected;
    let mut requires = None;
    if let Some(checks) = found.checks() {
        let whole = check_whole(dir, files, checks, &mut contents, &mut read);
        errors.extend(whole.errors);
        requires = whole.requires;
        if let (Some(req), Reading::Statements(engine)) = (&requires, reading) {
            errors.extend(req.refuses(engine));
        }
    }
    errors.extend(problems.into_iter().map(|(entry, misfit)| {
        let file = dir.join(entry);
        match misfit {
            Misfit::BadName {
                layout: Layout::Native,
                reason,
            } => SourceError::BadFileName { file, reason },
            Misfit::BadName { layout, reason } => SourceError::Layout {
                file,
                problem: format!("bad {layout} migration name: {reason}"),
            },
            Misfit::Other(problem) => SourceError::Layout { file, problem },
        }
    }));
    let statement_rules = found.statement_rules(options);
    let mut prepared = Vec::new();
    for claim in claims {
        let settings = claim
            .files
            .iter()
            .filter(|(_, role)| *role == Role::Settings)
            .map(|(path, _)| {
                let bytes = contents.remove(path).unwrap_or_else(|| read(path));
                settings_of(dir, found, path, bytes)
            })
            .collect::<Result<Vec<Settings>, SourceError>>();
        let settings = match settings {
            Ok(all) => all.into_iter().fold(Settings::default(), |a, s| Settings {
                no_transaction: a.no_transaction || s.no_transaction,
            }),
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for (path, role) in &claim.files {
            if *role == Role::Settings {
                continue;
            }
            let bytes = contents.remove(path).unwrap_or_else(|| read(path));
            let unit = Unit {
                layout: found,
                version: claim.version.clone(),
                name: &claim.name,
                file: path,
                no_transaction: settings.no_transaction,
                statement_rules: statement_rules.as_ref(),
                unmarked: layout::read_to_detect(path) && !marked.contains(path.as_str()),
            };
            prepared.extend(prepare(dir, &unit, *role, bytes, reading));
        }
    }
    assemble(dir, found, options, errors, prepared, requires)
}

/// What [`check_whole`] found.
struct WholeChecked {
    requires: Option<Requirement>,
    errors: Vec<SourceError>,
}

/// Runs a layout's check of the whole directory against its own file (Atlas's `atlas.sum`,
/// Prisma's `migration_lock.toml`), reading the files it needs into `contents`, where the
/// claims find them. A file that cannot be read is reported with its claim, and the check is
/// then skipped: it would only report the same file again.
fn check_whole(
    dir: &Path,
    files: &[String],
    checks: &layout::Checks,
    contents: &mut BTreeMap<String, Result<Vec<u8>, Unread>>,
    read: &mut impl FnMut(&str) -> Result<Vec<u8>, Unread>,
) -> WholeChecked {
    let own_path = dir.join(checks.own);
    let mut out = WholeChecked {
        requires: None,
        errors: Vec::new(),
    };
    let wanted: Vec<&String> = files.iter().filter(|f| (checks.reads)(f)).collect();
    for name in &wanted {
        if !contents.contains_key(name.as_str()) {
            let bytes = read(name);
            contents.insert((*name).clone(), bytes);
        }
    }
    let own = match files
        .iter()
        .any(|f| f == checks.own)
        .then(|| read(checks.own))
    {
        Some(Err(unread)) => {
            out.errors.push(unread.into_error(own_path));
            return out;
        }
        Some(Ok(bytes)) => Some(bytes),
        None => None,
    };
    let listed: Option<Vec<(&str, &[u8])>> = wanted
        .iter()
        .map(|name| {
            let bytes = contents.get(name.as_str())?.as_ref().ok()?;
            Some((name.as_str(), bytes.as_slice()))
        })
        .collect();
    let Some(listed) = listed else {
        return out;
    };
    let whole = (checks.whole)(own.as_deref(), &listed);
    out.errors
        .extend(whole.problems.into_iter().map(|p| match p.line {
            Some(line) => SourceError::LayoutFile {
                file: own_path.clone(),
                line,
                layout: checks.layout,
                problem: p.message,
            },
            None => SourceError::Layout {
                file: own_path.clone(),
                problem: p.message,
            },
        }));
    out.requires = whole.requires.map(|r| Requirement {
        file: own_path.clone(),
        line: r.line,
        layout: checks.layout,
        provider: r.provider,
        engine: r.engine,
    });
    out
}

/// What a layout's claim says about one file, handed to [`prepare`].
struct Unit<'a> {
    layout: Layout,
    version: Option<Version>,
    name: &'a str,
    /// Relative to the migrations directory.
    file: &'a str,
    /// The layout's settings file says its scripts run outside a transaction.
    no_transaction: bool,
    /// What the layout checks in the statements once they are found.
    statement_rules: Option<&'a StatementRules>,
    /// Detection scanned the file for goose's and dbmate's markers and found none.
    unmarked: bool,
}

/// Reads a layout's settings file (diesel's `metadata.toml`).
fn settings_of(
    dir: &Path,
    found: Layout,
    path: &str,
    bytes: Result<Vec<u8>, Unread>,
) -> Result<Settings, SourceError> {
    let file = dir.join(path);
    let bytes = bytes.map_err(|u| u.into_error(file.clone()))?;
    let text = decode(&bytes).map_err(|offset| SourceError::NotUtf8 {
        file: file.clone(),
        offset,
    })?;
    let read = found
        .settings()
        .expect("only layouts that read settings claim settings files");
    read(&line_endings(text)).map_err(|p| SourceError::in_layout_file(file, found, p))
}

/// One script, checked on its own: name, encoding, directives, statements and (for up
/// scripts) the checksum.
struct Prepared {
    file_name: String,
    version: Option<Version>,
    name: String,
    kind: Kind,
    outcome: Result<Checked, Vec<SourceError>>,
}

/// A script that passed the checks of [`prepare`].
struct Checked {
    script: Script,
    /// Up scripts only.
    checksum: Option<String>,
}

/// Checks the file `unit` names, read as `role`: one script, or one per section.
fn prepare(
    dir: &Path,
    unit: &Unit<'_>,
    role: Role,
    bytes: Result<Vec<u8>, Unread>,
    reading: Reading,
) -> Vec<Prepared> {
    let path = dir.join(unit.file);
    let one = |kind: Kind, outcome| Prepared {
        file_name: unit.file.to_owned(),
        version: unit.version.clone(),
        name: unit.name.to_owned(),
        kind,
        outcome,
    };
    let whole_kind = match role {
        Role::Script(kind) => kind,
        _ => Kind::Up,
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(unread) => return vec![one(whole_kind, Err(vec![unread.into_error(path)]))],
    };
    let raw = match decode(&bytes) {
        Ok(raw) => raw,
        Err(offset) => {
            let e = SourceError::NotUtf8 { file: path, offset };
            return vec![one(whole_kind, Err(vec![e]))];
        }
    };
    if let Some(offset) = raw.find('\0') {
        let text = line_endings(&raw[..offset]);
        let line = 1 + text.matches('\n').count();
        let e = SourceError::NulByte {
            file: path,
            line,
            offset,
        };
        return vec![one(whole_kind, Err(vec![e]))];
    }
    let Role::Script(kind) = role else {
        // Sections: the layout cuts the file; each section is a script of its own.
        let cut = unit
            .layout
            .sections()
            .expect("only layouts with sections claim section files");
        return match cut(raw) {
            Err(p) => {
                let e = SourceError::in_layout_file(path, unit.layout, p);
                vec![one(Kind::Up, Err(vec![e]))]
            }
            Ok(sections) => {
                let has_down = sections.iter().any(|s| s.kind == Kind::Down);
                sections
                    .into_iter()
                    .map(|s| {
                        let kind = match s.kind {
                            Kind::Up if !has_down => Kind::Irreversible,
                            k => k,
                        };
                        let hashed = line_endings(&s.text);
                        let how = How {
                            no_transaction: s.no_transaction,
                            statement_rules: None,
                        };
                        let outcome = checked(&path, &s.sql, kind, &hashed, &how, reading);
                        one(kind, outcome)
                    })
                    .collect()
            }
        };
    };
    // The checksum and the directives read the text with LF line endings; what runs is the
    // file's own bytes, so a CR inside a string literal stays data.
    let text = line_endings(raw);
    if let Some(m) = (!unit.unmarked).then(|| foreign::marker(&text)).flatten() {
        let e = SourceError::ForeignMarker {
            file: path,
            line: m.line,
            layout: m.layout,
            read_as: unit.layout,
            marker: m.text,
        };
        return vec![one(kind, Err(vec![e]))];
    }
    let mut no_transaction = unit.no_transaction;
    if let Some(read) = unit.layout.checks().and_then(|c| c.directives) {
        // The tool reads its directives in the file as written (Atlas's need a blank line
        // after them, so a file written with CRLF has none).
        let written = std::str::from_utf8(&bytes).unwrap_or(raw);
        match read(written) {
            Ok(settings) => no_transaction |= settings.no_transaction,
            Err(p) => {
                let e = SourceError::in_layout_file(path, unit.layout, p);
                return vec![one(kind, Err(vec![e]))];
            }
        }
    }
    let how = How {
        no_transaction,
        statement_rules: unit.statement_rules,
    };
    vec![one(kind, checked(&path, raw, kind, &text, &how, reading))]
}

/// What the layout says about how a script runs, beside its own directives.
struct How<'a> {
    /// The layout's marker or settings put it outside a transaction.
    no_transaction: bool,
    /// What the layout checks in its statements.
    statement_rules: Option<&'a StatementRules>,
}

/// The script of `raw` (what runs), its directives read from `hashed`'s lines and its
/// checksum the SHA-256 of `hashed` (the text with LF line endings: the whole file, or the
/// section's own text).
fn checked(
    path: &Path,
    raw: &str,
    kind: Kind,
    hashed: &str,
    how: &How<'_>,
    reading: Reading,
) -> Result<Checked, Vec<SourceError>> {
    let mut errors = Vec::new();
    let text = line_endings(raw);
    let Some(script) = script(path, raw, &text, how, reading, &mut errors) else {
        return Err(errors);
    };
    let checksum = (kind != Kind::Down).then(|| hex_sha256(hashed.as_bytes()));
    Ok(Checked { script, checksum })
}

/// Lowercase hex SHA-256, as recorded in history.
fn hex_sha256(bytes: &[u8]) -> String {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut hex).expect("64 hex digits for 32 bytes");
    std::str::from_utf8(&hex)
        .expect("hex digits are ASCII")
        .to_owned()
}

/// Checks the scripts against each other (duplicate versions, down scripts without an up
/// script) in file-name order, collecting every problem.
fn assemble(
    dir: &Path,
    found: Layout,
    options: &Options,
    mut errors: Vec<SourceError>,
    prepared: Vec<Prepared>,
    requires: Option<Requirement>,
) -> Result<MigrationSet, SourceErrors> {
    let mut ups: BTreeMap<Version, (String, Kind, Script, String, String)> = BTreeMap::new();
    // By name: (script, checksum, file name).
    let mut repeatables: BTreeMap<String, (Script, String, String)> = BTreeMap::new();
    let mut downs: Vec<(Version, String, String, Script)> = Vec::new();
    // Every up script by its file, valid or not, to say the right thing about a down script.
    let up_names: Vec<(Version, String, Kind, String)> = prepared
        .iter()
        .filter(|p| p.kind != Kind::Down)
        .filter_map(|p| {
            Some((
                p.version.clone()?,
                p.name.clone(),
                p.kind,
                p.file_name.clone(),
            ))
        })
        .collect();

    for p in prepared {
        let Prepared {
            file_name,
            version,
            name,
            kind,
            outcome,
        } = p;
        let Checked { script, checksum } = match outcome {
            Ok(checked) => checked,
            Err(e) => {
                errors.extend(e);
                continue;
            }
        };
        let Some(version) = version else {
            if let Some((.., other)) = repeatables.get(&name) {
                errors.push(SourceError::DuplicateRepeatable {
                    file: dir.join(&file_name),
                    name,
                    other: dir.join(other),
                });
                continue;
            }
            let checksum = checksum.unwrap_or_default();
            repeatables.insert(name, (script, checksum, file_name));
            continue;
        };
        if kind == Kind::Down {
            downs.push((version, name, file_name, script));
            continue;
        }
        if let Some((.., other_file)) = ups.get(&version) {
            if *other_file == file_name {
                // The up section of a file whose down section comes first: not a duplicate.
                continue;
            }
            errors.push(SourceError::DuplicateVersion {
                file: dir.join(&file_name),
                version,
                other: dir.join(other_file),
            });
            continue;
        }
        let checksum = checksum.unwrap_or_default();
        ups.insert(version, (name, kind, script, checksum, file_name));
    }

    // A down script pairs with the up script of its version, whatever its name says, as sqlx
    // and golang-migrate pair them (`30_add_x.up.sql` with `30_drop_x.down.sql`).
    let mut down_by_version: BTreeMap<Version, Script> = BTreeMap::new();
    let mut down_files: BTreeMap<Version, String> = BTreeMap::new();
    for (version, name, file_name, script) in downs {
        if let Some((_, up_kind, .., up_file)) = ups.get(&version) {
            // A file with sections pairs with itself even without a down section; a native
            // `.sql` file is irreversible by its name.
            if *up_kind == Kind::Up || *up_file == file_name {
                if let Some(other) = down_files.get(&version) {
                    errors.push(SourceError::DuplicateVersion {
                        file: dir.join(&file_name),
                        version,
                        other: dir.join(other),
                    });
                } else {
                    down_files.insert(version.clone(), file_name);
                    down_by_version.insert(version, script);
                }
                continue;
            }
        }
        // Its up file is there but has errors of its own (reported above), or lost to a
        // duplicate version: saying "without an up file" would send the reader looking for
        // a file that exists.
        let up = up_names
            .iter()
            .find(|(v, _, k, _)| *v == version && *k == Kind::Up);
        if up.is_some() {
            continue;
        }
        let file = dir.join(&file_name);
        let expected = found.up_file_name(options, &version.to_string(), &name);
        let same_version = up_names.iter().find(|(v, ..)| *v == version);
        errors.push(match same_version {
            Some((_, up_name, Kind::Irreversible, up_file)) if *up_name == name => {
                SourceError::DownNotPaired {
                    file,
                    up: dir.join(up_file),
                    fix: format!("a `.sql` file is irreversible by its name; rename it to {expected} to pair them, or delete this down file"),
                }
            }
            Some((_, _, _, up_file)) => SourceError::DownNotPaired {
                file,
                up: dir.join(up_file),
                fix: "a `.sql` file is irreversible by its name; rename it to <version>_<name>.up.sql to pair them, or delete this down file".into(),
            },
            None => SourceError::DownWithoutUp { file, expected },
        });
    }

    if !errors.is_empty() {
        return Err(SourceErrors(errors));
    }
    let order_warning = text_order_warning(dir, found, &ups);
    let migrations = ups
        .into_iter()
        .map(|(version, (name, _, up, checksum, _))| Migration {
            down: down_by_version.remove(&version),
            version,
            name,
            checksum,
            up,
        })
        .collect();
    let repeatables = repeatables
        .into_iter()
        .map(|(name, (script, checksum, _))| Repeatable {
            name,
            checksum,
            script,
        })
        .collect();
    Ok(MigrationSet {
        dir: dir.to_owned(),
        layout: found,
        migrations,
        requires,
        order_warning,
        repeatables,
    })
}

/// The first pair of migrations, in shipgate's order, that `layout`'s own tool would apply the
/// other way round, as a sentence; `None` when the orders agree or the tool orders as numbers.
fn text_order_warning(
    dir: &Path,
    layout: Layout,
    ups: &BTreeMap<Version, (String, Kind, Script, String, String)>,
) -> Option<String> {
    if !layout.orders_versions_as_text() {
        return None;
    }
    // The tool's key: the entry's name (diesel: its version, up to the first `_`, without `-`).
    let key = |file: &str| -> String {
        let entry = file.split('/').next().unwrap_or(file);
        match layout {
            Layout::Diesel => entry.split('_').next().unwrap_or(entry).replace('-', ""),
            _ => entry.to_owned(),
        }
    };
    let files: Vec<&String> = ups.values().map(|(.., file)| file).collect();
    files.windows(2).find_map(|w| {
        (key(w[0]) > key(w[1])).then(|| {
            format!(
                "{layout} applies {} before {} (it orders versions as text), shipgate after it (as numbers: their versions have different numbers of digits); on a database where neither is applied they run in shipgate's order",
                dir.join(w[1]).display(),
                dir.join(w[0]).display()
            )
        })
    })
}

/// UTF-8 check, BOM removal and CRLF/CR → LF. `Err` carries the offset of the first bad byte.
pub fn normalise(bytes: &[u8]) -> Result<String, usize> {
    decode(bytes).map(|text| line_endings(text).into_owned())
}

/// UTF-8 check and BOM removal: the text that runs. `Err` carries the offset of the first bad
/// byte.
fn decode(bytes: &[u8]) -> Result<&str, usize> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.valid_up_to())?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// CRLF and lone CR → LF, as the checksum and the directives read a file.
fn line_endings(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\r') {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// The normalised checksum of raw file bytes, as recorded in history.
pub fn checksum(bytes: &[u8]) -> Option<String> {
    normalise(bytes).ok().map(|t| hex_sha256(t.as_bytes()))
}

/// The script of one file: `raw` is what runs, `text` the same with LF line endings.
fn script(
    path: &Path,
    raw: &str,
    text: &str,
    how: &How<'_>,
    reading: Reading,
    errors: &mut Vec<SourceError>,
) -> Option<Script> {
    let before = errors.len();
    let mut directives = directives(path, text, errors);
    // The layout's own marker (goose's `NO TRANSACTION`, dbmate's `transaction:false`,
    // diesel's `run_in_transaction = false`) means what `shipgate:no-transaction` means.
    directives.no_transaction |= how.no_transaction;
    let mut script = Script {
        path: path.to_owned(),
        sql: raw.to_owned(),
        statements: Vec::new(),
        directives,
        read: false,
        statement_rules: how.statement_rules.cloned(),
    };
    if let Reading::Statements(engine) = reading {
        read_body(&mut script, engine.into(), errors);
    }
    (errors.len() == before).then_some(script)
}

/// Finds the statements of an unread `script` by `engine`'s rules, applies its layout's
/// statement rules (Flyway decides from them whether the file runs in a transaction), cuts out a
/// hand-written `BEGIN; … COMMIT;` wrapper, and refuses transaction control inside shipgate's
/// transaction. A comment-only file is valid: an up file is a deliberate no-op, a down file
/// declares the migration irreversible (`Script::is_empty`); the lint reports both.
fn read_body(script: &mut Script, rules: split::Rules, errors: &mut Vec<SourceError>) {
    let engine = rules.engine;
    if script.read {
        return;
    }
    let raw = std::mem::take(&mut script.sql);
    let (statements, spans): (Vec<Statement>, Vec<_>) =
        split::spanned(&raw, rules).into_iter().unzip();
    if let Some(checks) = &script.statement_rules {
        let decide = !script.directives.no_transaction;
        match checks.apply(&statements, rules, decide) {
            Ok(outside) => script.directives.no_transaction |= outside,
            Err(p) => errors.push(SourceError::LayoutFile {
                file: script.path.clone(),
                line: p.line,
                layout: checks.layout,
                problem: p.message,
            }),
        }
    }
    let mut sql = raw.clone();
    let mut body: &[Statement] = &statements;
    if !script.directives.no_transaction {
        let is = |s: &Statement, words: &[&str]| words.iter().any(|w| first_words_are(&s.sql, w));
        let opens = [
            "begin",
            "begin transaction",
            "begin work",
            "start transaction",
        ];
        let closes = [
            "commit",
            "commit transaction",
            "commit work",
            "end",
            "end transaction",
        ];
        if let (Some(first), Some(last)) = (statements.first(), statements.last()) {
            if statements.len() >= 2 && is(first, &opens) && is(last, &closes) {
                body = &statements[1..statements.len() - 1];
                // The bytes between the wrapper's statements, as written.
                sql = raw[spans[0].end..spans[spans.len() - 1].start].to_owned();
            }
        }
        // SAVEPOINT, RELEASE and ROLLBACK TO work inside shipgate's transaction; these end it.
        for s in body {
            if let Some(keyword) = split::transaction_control(&s.sql, engine) {
                errors.push(SourceError::TransactionControl {
                    file: script.path.clone(),
                    line: s.line,
                    keyword,
                });
            }
        }
    }
    script.statements = body.to_vec();
    script.sql = sql;
    script.read = true;
}

fn first_words_are(sql: &str, words: &str) -> bool {
    let code = strip_leading_comments(sql);
    let mut got = code.split_whitespace();
    let matched = words
        .split(' ')
        .all(|w| got.next().is_some_and(|g| g.eq_ignore_ascii_case(w)));
    matched && got.next().is_none()
}

fn strip_leading_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start();
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = sql.strip_prefix("/*") {
            sql = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return sql;
        }
    }
}

/// Reads the `shipgate:` directives. All but `allow` must stand in the leading comment block.
fn directives(path: &Path, text: &str, errors: &mut Vec<SourceError>) -> Directives {
    let mut d = Directives::default();
    let mut leading = true;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let comment = line.strip_prefix("--").map(str::trim);
        if comment.is_none() && !line.is_empty() {
            leading = false;
        }
        let Some(comment) = comment else { continue };
        if line_no == 1 && comment == "no-transaction" {
            d.no_transaction = true;
            continue;
        }
        let Some(rest) = comment.strip_prefix("shipgate:") else {
            continue;
        };
        let (name, arg) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(n, a)| (n, a.trim()));
        let bad = |problem: &str| SourceError::BadDirective {
            file: path.to_owned(),
            line: line_no,
            name: name.to_owned(),
            problem: problem.to_owned(),
        };
        let known = [
            "no-transaction",
            "lock-timeout",
            "statement-timeout",
            "contract",
            "allow",
        ];
        if !known.contains(&name) {
            errors.push(SourceError::UnknownDirective {
                file: path.to_owned(),
                line: line_no,
                name: name.to_owned(),
            });
            continue;
        }
        if !leading && name != "allow" {
            errors.push(bad(
                "must stand in the comment block at the top of the file, before any SQL",
            ));
            continue;
        }
        match name {
            "no-transaction" | "contract" if !arg.is_empty() => {
                errors.push(bad("takes no argument"))
            }
            "no-transaction" => d.no_transaction = true,
            "contract" => d.contract = true,
            "lock-timeout" | "statement-timeout" => match humantime::parse_duration(arg) {
                Ok(v) if v > MAX_SERVER_TIMEOUT => errors.push(bad(&format!(
                    "`{arg}` is longer than the {MAX_SERVER_TIMEOUT_TEXT}"
                ))),
                Ok(v) if name == "lock-timeout" => d.lock_timeout = Some(v),
                Ok(v) => d.statement_timeout = Some(v),
                Err(e) => errors.push(bad(&format!(
                    "expected a duration such as 10s or 15m, got `{arg}` ({e})"
                ))),
            },
            _ => {
                let (rule, reason) = arg
                    .split_once(char::is_whitespace)
                    .map_or((arg, ""), |(r, why)| (r, why.trim()));
                if rule.is_empty() {
                    errors.push(bad("expected `shipgate:allow <rule-id> <reason>`"));
                } else if reason.is_empty() {
                    errors.push(bad(&format!(
                        "acknowledging `{rule}` needs a reason after the rule id"
                    )));
                } else {
                    d.allows.push(Allow {
                        rule: rule.to_owned(),
                        reason: reason.to_owned(),
                        line: line_no,
                    });
                }
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::layout::Choice;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, Vec<String>> {
        let files = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect();
        parse(Path::new("m"), files).map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_every_layout_in_version_order() {
        let s = set(&[
            ("10_b.sql", "SELECT 10;"),
            ("2_Add-Users.v2.up.sql", "SELECT 2;"),
            ("2_Add-Users.v2.down.sql", "SELECT -2;"),
            ("README.md", "ignored"),
            ("3_c.up.sql", "SELECT 3;"),
        ])
        .expect("valid set");
        let got: Vec<(i64, &str, bool)> = s
            .migrations
            .iter()
            .map(|m| {
                (
                    m.version.as_int().expect("an integer"),
                    m.name.as_str(),
                    m.down.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(2, "Add-Users.v2", true), (3, "c", false), (10, "b", false)]
        );
        assert_eq!(s.head(), Some(Version::from_int(10)));
    }

    #[test]
    fn names_the_file_for_each_problem() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("1_a.up.sql", "SELECT 1;"), ("1_b.up.sql", "SELECT 1;")],
                "m/1_b.up.sql: duplicate version 1, also used by m/1_a.up.sql",
            ),
            (
                &[("1_a.sql", "SELECT 1;"), ("1_a.up.sql", "SELECT 1;")],
                "duplicate version 1",
            ),
            (
                &[("x_a.sql", "SELECT 1;")],
                "m/x_a.sql: bad migration file name: version `x`",
            ),
            (&[("0_a.sql", "SELECT 1;")], "version 0 is not positive"),
            (
                &[("1_.sql", "SELECT 1;")],
                "name after the version is empty",
            ),
            (
                &[("1create.sql", "SELECT 1;")],
                "no `_` between version and name",
            ),
            (
                &[("99999999999999999999_a.sql", "SELECT 1;")],
                "larger than",
            ),
            (
                &[("1_a.down.sql", "SELECT 1;")],
                "m/1_a.down.sql: down file without an up file (expected 1_a.up.sql",
            ),
            // A down file whose up file is there never reads "without an up file": the
            // up file's own error is the one error, or the message names the up file.
            (
                &[("1_a.sql", "SELECT 1;"), ("1_a.down.sql", "SELECT 1;")],
                "m/1_a.down.sql: down file does not pair with m/1_a.sql: a `.sql` file is irreversible by its name; rename it to 1_a.up.sql",
            ),
            (
                &[("1_a.up.sql", "SELECT 1;"), ("1_a.down.sql", "SELECT 1;"), ("1_b.down.sql", "SELECT 1;")],
                "m/1_b.down.sql: duplicate version 1",
            ),
            (
                &[("1_a.up.sql", "SELECT 1;\nCOMMIT;"), ("1_a.down.sql", "SELECT 1;")],
                "m/1_a.up.sql:2: `COMMIT` in a migration",
            ),
            (
                &[("1_a.UP.sql", "-- shipgate:nope\nSELECT 1;"), ("1_a.down.sql", "SELECT 1;")],
                "m/1_a.UP.sql:1: unknown directive",
            ),
            (
                &[("1_a.up.sql", "SELECT 1;"), ("1_b.v2.up.sql", "SELECT 1;"), ("1_b.v2.down.sql", "SELECT 1;")],
                "m/1_b.v2.up.sql: duplicate version 1",
            ),
            (
                &[("1_a.sql", "-- shipgate:no-transacton\nSELECT 1;")],
                "m/1_a.sql:1: unknown directive `shipgate:no-transacton`",
            ),
            (
                &[("1_a.sql", "-- shipgate:lock-timeout soon\nSELECT 1;")],
                "m/1_a.sql:1: directive `shipgate:lock-timeout`: expected a duration",
            ),
            (
                &[("1_a.sql", "SELECT 1;\n-- shipgate:no-transaction\n")],
                "must stand in the comment block at the top",
            ),
            (
                &[("1_a.sql", "-- shipgate:allow ddl-lock\nSELECT 1;")],
                "needs a reason",
            ),
            (
                &[("1_a.sql", "SELECT 1;\nCOMMIT;\nSELECT 2;")],
                "m/1_a.sql:2: `COMMIT` in a migration that runs inside shipgate's transaction",
            ),
            (
                &[("R__views.sql", "SELECT 1;"), ("R__views.SQL", "SELECT 2;")],
                "m/R__views.sql: duplicate repeatable migration `views`, also used by m/R__views.SQL",
            ),
            (
                &[("V1__a.sql", "SELECT 1;"), ("R__v.sql", "CREATE INDEX CONCURRENTLY i ON t (x);\nSELECT ${x};")],
                "m/R__v.sql:2: Flyway placeholder `${x}`",
            ),
            (
                &[("V1__a.sql", "CREATE TABLE t (x int);\nCREATE INDEX CONCURRENTLY i ON t (x);")],
                "m/V1__a.sql:2: `CREATE INDEX CONCURRENTLY i ON t (x)` cannot run in a transaction",
            ),
            (
                &[("1_a.up.sql", "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;")],
                "m/1_a.up.sql:1: `-- +goose Up` marks a goose file with up and down sections, but the directory is read in the shipgate (sqlx/golang-migrate) layout",
            ),
            (
                &[("1_a.up.sql", "CREATE TABLE t (id int);\n\n-- migrate:down\nDROP TABLE t;")],
                "m/1_a.up.sql:3: `-- migrate:down` marks a dbmate file",
            ),
        ];
        for (files, want) in cases {
            let errs = set(files).expect_err("must fail");
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains(want), "got {:?}, want {want:?}", errs[0]);
        }
    }

    #[test]
    fn the_every_deploy_load_splits_nothing_until_a_script_will_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("1_a.up.sql"),
            "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("1_a.down.sql"), "DROP TABLE a;").expect("write");
        std::fs::write(
            dir.path().join("2_b.up.sql"),
            "CREATE TABLE b (id int);\nCOMMIT;\nSELECT 1;\n",
        )
        .expect("write");
        let unread =
            load_unread(dir.path(), Choice::Auto).expect("names, encodings and pairs are valid");
        assert!(unread
            .migrations
            .iter()
            .all(|m| !m.up.read && m.up.statements.is_empty()));
        assert_eq!(
            unread
                .migrations
                .iter()
                .map(|m| m.checksum.clone())
                .collect::<Vec<_>>(),
            load_unread(dir.path(), Choice::Auto)
                .expect("again")
                .migrations
                .iter()
                .map(|m| m.checksum.clone())
                .collect::<Vec<_>>()
        );
        // Reading 1 unwraps its hand-written transaction and reads its down file too.
        let one = unread
            .read([Version::from_int(1)], [], Engine::Postgres)
            .expect("1 reads");
        let m = one.get(&Version::from_int(1)).expect("1");
        assert!(m.up.read && m.down.as_ref().is_some_and(|d| d.read));
        assert_eq!(m.up.sql.trim(), "CREATE TABLE a (id int);");
        assert!(
            !one.get(&Version::from_int(2)).expect("2").up.read,
            "2 was not asked for"
        );
        // Reading 2 finds what loading everything finds: its COMMIT.
        let err = unread
            .read([Version::from_int(2)], [], Engine::Postgres)
            .expect_err("2 commits");
        let full = load(dir.path(), Choice::Auto, Engine::Postgres)
            .expect_err("the full load refuses 2 too");
        assert_eq!(err.to_string(), full.to_string());
    }

    #[test]
    fn repeatables_are_read_in_name_order_with_their_checksums() {
        let s = set(&[
            ("1_a.up.sql", "CREATE TABLE a (id int);"),
            ("R__views.sql", "CREATE OR REPLACE VIEW v AS SELECT 1;\r\n"),
            ("R__functions.sql", "SELECT 2;"),
        ])
        .expect("valid set");
        let names: Vec<&str> = s.repeatables.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["functions", "views"]);
        let views = s.repeatable("views").expect("views");
        // The same normalised checksum as a versioned file's.
        assert_eq!(
            Some(views.checksum.clone()),
            checksum(b"CREATE OR REPLACE VIEW v AS SELECT 1;\n")
        );
        assert_eq!(views.script.statements.len(), 1);
        assert_eq!(s.migrations.len(), 1);
    }

    #[test]
    fn flyways_transaction_is_decided_when_the_statements_are_read_not_on_the_no_op() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("V1__table.sql", "CREATE TABLE t (id int);\n");
        write(
            "V2__index.sql",
            "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
        );
        write("R__refresh.sql", "VACUUM t;\n");
        let unread = load_unread(dir.path(), Choice::Auto).expect("valid names");
        assert_eq!(unread.layout, Layout::Flyway);
        let v2 = unread.get(&Version::from_int(2)).expect("2");
        assert!(!v2.up.read && !v2.up.directives.no_transaction);
        let read = unread
            .read([1, 2].map(Version::from_int), ["refresh"], Engine::Postgres)
            .expect("reads");
        let get = |v| read.get(&Version::from_int(v)).expect("read");
        assert!(!get(1).up.directives.no_transaction);
        assert!(get(2).up.directives.no_transaction);
        let refresh = read.repeatable("refresh").expect("refresh");
        assert!(refresh.script.read && refresh.script.directives.no_transaction);
        // The same directory in the native layout is read as written: its own directives.
        let native = parse_as(
            Engine::Postgres,
            Path::new("m"),
            vec![("R__refresh.sql".into(), b"VACUUM t;".to_vec())],
        )
        .expect("native");
        assert!(!native.repeatables[0].script.directives.no_transaction);
    }

    #[test]
    fn a_down_file_pairs_with_the_up_file_of_its_version_whatever_its_name() {
        // sqlx and golang-migrate pair by version: real projects name the two differently.
        let set = set(&[
            (
                "30_add_magic_metadata.up.sql",
                "ALTER TABLE t ADD COLUMN m text;",
            ),
            (
                "30_drop_magic_metadata.down.sql",
                "ALTER TABLE t DROP COLUMN m;",
            ),
        ])
        .expect("valid");
        let m = set.get(&Version::from_int(30)).expect("migration 30");
        assert_eq!(m.name, "add_magic_metadata");
        let down = m.down.as_ref().expect("paired");
        assert!(down.path.ends_with("30_drop_magic_metadata.down.sql"));
    }

    #[test]
    fn comment_only_files_are_valid_and_empty() {
        let s = set(&[
            (
                "1_hold.up.sql",
                "-- keeps version 1: the schema came from a dump\n\n/* nothing */\n",
            ),
            ("1_hold.down.sql", "-- irreversible\n"),
            ("2_b.sql", "SELECT 1;"),
        ])
        .expect("comment-only files are valid");
        let m = &s.migrations[0];
        assert!(m.up.is_empty());
        assert!(m.down.as_ref().is_some_and(Script::is_empty));
        assert!(!s.migrations[1].up.is_empty());
    }

    #[test]
    fn reads_extensions_in_any_case_and_keeps_the_file_names() {
        let s = set(&[
            ("1_first.sql", "SELECT 1;"),
            ("2_second.SQL", "SELECT 2;\n"),
            ("3_third.up.SQL", "SELECT 3;"),
            ("3_third.Down.Sql", "SELECT -3;"),
        ])
        .expect("valid set");
        let got: Vec<(i64, &str, &Path, Option<&Path>)> = s
            .migrations
            .iter()
            .map(|m| {
                let down = m.down.as_ref().map(|d| d.path.as_path());
                (
                    m.version.as_int().expect("an integer"),
                    m.name.as_str(),
                    m.up.path.as_path(),
                    down,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "first", Path::new("m/1_first.sql"), None),
                (2, "second", Path::new("m/2_second.SQL"), None),
                (
                    3,
                    "third",
                    Path::new("m/3_third.up.SQL"),
                    Some(Path::new("m/3_third.Down.Sql"))
                ),
            ]
        );
        assert_eq!(
            Some(&s.migrations[1].checksum),
            checksum(b"SELECT 2;\n").as_ref()
        );
        let errs = set(&[("2_a.sql", "SELECT 1;"), ("2_a.SQL", "SELECT 1;")]).expect_err("dup");
        assert_eq!(
            errs,
            vec!["m/2_a.sql: duplicate version 2, also used by m/2_a.SQL"]
        );
    }

    #[test]
    fn reports_every_problem_not_just_the_first() {
        let errs = set(&[
            ("a.sql", "x"),
            ("1_a.sql", "-- shipgate:nope\nSELECT 1;"),
            ("2_b.down.sql", "SELECT 1;"),
        ])
        .expect_err("must fail");
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn loading_a_directory_gives_what_parsing_its_bytes_gives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = "SELECT 1;\n".repeat(10_000); // larger than the reused read buffer
        let files: Vec<(&str, String)> = vec![
            (
                "1_a.up.sql",
                "CREATE TABLE a (id int);\r\nINSERT INTO a VALUES (1);\r\n".into(),
            ),
            ("1_a.down.sql", "DROP TABLE a;\n".into()),
            ("2_big.sql", big),
            (
                "3_c.up.sql",
                "\u{feff}-- shipgate:no-transaction\nCREATE INDEX x ON a (id);\n".into(),
            ),
            ("README.md", "not a migration".into()),
        ];
        for (name, text) in &files {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        let loaded = load(dir.path(), Choice::Auto, Engine::Postgres).expect("loads");
        let bytes = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect();
        let parsed = parse(dir.path(), bytes).expect("parses");
        assert_eq!(format!("{loaded:?}"), format!("{parsed:?}"));
        assert_eq!(loaded.migrations.len(), 3);
        assert_eq!(loaded.migrations[1].up.statements.len(), 10_000);

        // Problems are reported alike too.
        std::fs::write(dir.path().join("3_dup.sql"), "SELECT 1;\n").expect("write");
        let from_disk = load(dir.path(), Choice::Auto, Engine::Postgres)
            .expect_err("duplicate version")
            .to_string();
        assert!(from_disk.contains("3_dup.sql"), "{from_disk}");
    }

    #[test]
    fn a_directory_read_on_two_threads_gives_what_parsing_gives_in_file_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let n = 3 * SPLIT_READ_MIN;
        let mut files: Vec<(String, Vec<u8>)> = (1..=n)
            .map(|i| {
                let eol = if i % 7 == 0 { "\r\n" } else { "\n" };
                let text = format!("CREATE TABLE t{i} (id int);{eol}").repeat(i);
                (format!("{i:04}_m{i}.sql"), text.into_bytes())
            })
            .collect();
        files.push(("README.md".into(), b"not a migration".to_vec()));
        for (name, bytes) in &files {
            std::fs::write(d.join(name), bytes).expect("write");
        }
        let loaded = load(d, Choice::Auto, Engine::Postgres).expect("loads");
        let parsed = parse(d, files.into_iter().collect()).expect("parses");
        assert_eq!(format!("{loaded:?}"), format!("{parsed:?}"));
        assert_eq!(loaded.migrations.len(), n);

        // A file whose size says 0 and that has text (as files of /proc do) is read to its end.
        let proc_text = std::fs::read("/proc/version").expect("/proc/version");
        assert!(!proc_text.is_empty());
        std::os::unix::fs::symlink("/proc/version", d.join("9998_proc.sql")).expect("symlink");
        let set = load_unread(d, Choice::Auto).expect("loads");
        let last = set.migrations.last().expect("a migration");
        assert_eq!(Some(last.checksum.clone()), checksum(&proc_text));
        std::fs::remove_file(d.join("9998_proc.sql")).expect("remove");

        // Problems in either half are reported in file order, as from one thread.
        std::fs::write(d.join("0002_m2.sql"), b"SELECT \xff;\n").expect("write");
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join(format!("{:04}_pipe.sql", n + 1)))
            .status()
            .expect("mkfifo");
        assert!(fifo.success());
        let p = |name: &str| d.join(name).display().to_string();
        let errors = load_errors(d);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with(&p("0002_m2.sql")), "{errors:?}");
        assert!(errors[0].contains("UTF-8"), "{errors:?}");
        assert_eq!(
            errors[1],
            format!(
                "{}: not a regular file (a FIFO); only regular files are read as migrations",
                p(&format!("{:04}_pipe.sql", n + 1))
            )
        );
    }

    /// The problems `load` reports for `dir`, as text.
    fn load_errors(dir: &Path) -> Vec<String> {
        let errors =
            load(dir, Choice::Auto, Engine::Postgres).expect_err("the directory has problems");
        errors.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn loading_refuses_what_is_not_a_regular_file_of_bounded_size() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("1_ok.sql"), "SELECT 1;\n").expect("write");
        let fifo = std::process::Command::new("mkfifo")
            .arg(d.join("2_pipe.sql"))
            .status()
            .expect("mkfifo");
        assert!(fifo.success());
        symlink("/dev/null", d.join("3_null.sql")).expect("symlink");
        symlink("nowhere/4_gone.sql", d.join("4_gone.sql")).expect("symlink");
        std::fs::File::create(d.join("5_big.sql"))
            .and_then(|f| f.set_len(MAX_FILE_SIZE + 1))
            .expect("sparse file");
        std::fs::write(d.join("6_real.sql"), "SELECT 6;\n").expect("write");
        symlink("6_real.sql", d.join("7_link.sql")).expect("symlink");

        let p = |name: &str| d.join(name).display().to_string();
        assert_eq!(
            load_errors(d),
            vec![
                format!("{}: not a regular file (a FIFO); only regular files are read as migrations", p("2_pipe.sql")),
                format!("{}: not a regular file (a character device); only regular files are read as migrations", p("3_null.sql")),
                format!("{}: dangling symbolic link to nowhere/4_gone.sql", p("4_gone.sql")),
                format!("{}: larger than the 64 MiB limit for a migration file (67108865 bytes)", p("5_big.sql")),
            ]
        );

        // A link to a regular file is read like the file (here: a duplicate of version 6's
        // text under version 7).
        for name in ["2_pipe.sql", "3_null.sql", "4_gone.sql", "5_big.sql"] {
            std::fs::remove_file(d.join(name)).expect("remove");
        }
        let set = load(d, Choice::Auto, Engine::Postgres).expect("loads");
        assert_eq!(set.migrations[2].checksum, set.migrations[1].checksum);
        assert_eq!(set.migrations[2].up.path, d.join("7_link.sql"));
    }

    #[test]
    fn loading_reads_diesel_directories_and_refuses_a_mix_of_layouts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let write = |name: &str| {
            let path = d.join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "SELECT 1;\n").expect("write");
        };
        write("1_ok.sql");
        write("seeds/users.sql");
        write(".git/up.sql");
        assert_eq!(
            load(d, Choice::Auto, Engine::Postgres)
                .expect("other subdirectories are ignored")
                .migrations
                .len(),
            1
        );

        write("2024-01-01-000000_users/up.sql");
        write("2024-01-01-000000_users/down.sql");
        write("20240102000000_init/migration.sql");
        std::os::unix::fs::symlink(
            d.join("2024-01-01-000000_users"),
            d.join("2024-01-03-000000_linked"),
        )
        .expect("symlink");
        let p = |name: &str| d.join(name).display().to_string();
        let mixed = "migration in a directory read as diesel; a directory holds one tool's layout (move it, or set `layout` to the one the directory is in)";
        assert_eq!(
            load_errors(d),
            vec![
                format!(
                    "{}: a shipgate (sqlx/golang-migrate) {mixed}",
                    p("1_ok.sql")
                ),
                format!("{}: a Prisma {mixed}", p("20240102000000_init/")),
            ]
        );
        std::fs::remove_file(d.join("1_ok.sql")).expect("rm");
        std::fs::remove_dir_all(d.join("20240102000000_init")).expect("rm");
        let set = load(d, Choice::Auto, Engine::Postgres).expect("a diesel directory");
        assert_eq!(set.layout, Layout::Diesel);
        let versions: Vec<String> = set
            .migrations
            .iter()
            .map(|m| m.version.to_string())
            .collect();
        assert_eq!(versions, ["20240101000000", "20240103000000"]);
        assert!(set.migrations.iter().all(|m| m.down.is_some()));
    }

    #[test]
    fn an_empty_directory_or_one_of_notes_has_no_migrations() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load(dir.path(), Choice::Auto, Engine::Postgres)
            .expect("empty")
            .migrations
            .is_empty());
        std::fs::write(dir.path().join("README.md"), "notes").expect("write");
        std::fs::write(dir.path().join(".keep"), "").expect("write");
        // What `atlas migrate hash` writes for a directory without migrations.
        let empty_sum = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
        std::fs::write(dir.path().join("atlas.sum"), empty_sum).expect("write");
        assert!(load(dir.path(), Choice::Auto, Engine::Postgres)
            .expect("notes only")
            .migrations
            .is_empty());
    }

    #[test]
    fn reads_what_a_layouts_own_file_says() {
        let parse_files = |engine, files: &[(&str, &str)]| {
            let files = files
                .iter()
                .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
                .collect();
            parse_as(engine, Path::new("m"), files)
                .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        // Atlas: the sum is verified, `txmode none` is honoured.
        let atlas = [
            ("1_a.sql", "-- atlas:txmode none\n\nCREATE TABLE a (id integer);\nSELECT * FROM missing_table;\n"),
            ("atlas.sum", "h1:9Q4NeLXBChbkG02CHGeztKGD6yLlo/0+wPrYGD9veZU=\n1_a.sql h1:XUpb5g4U5Sr2xRvMykLf7CvfkLLx5mQD1WWwK0mYQOw=\n"),
        ];
        let set = parse_files(Engine::Postgres, &atlas).expect("a valid sum");
        assert!(set.migrations[0].up.directives.no_transaction);
        let edited = [("1_a.sql", "CREATE TABLE a (id integer);\n"), atlas[1]];
        let errs = parse_files(Engine::Postgres, &edited).expect_err("edited");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("m/atlas.sum:2: checksum mismatch: 1_a.sql was edited"),
            "{errs:?}"
        );
        // Prisma: the provider must be the engine's.
        let prisma = [
            (
                "migration_lock.toml",
                "# Please do not edit this file manually\nprovider = \"mysql\"\n",
            ),
            (
                "20240101000000_a/migration.sql",
                "CREATE TABLE a (id integer);\n",
            ),
        ];
        let set = parse_files(Engine::Mysql, &prisma).expect("mysql files on mysql");
        assert_eq!(
            set.requires.as_ref().map(|r| r.engine),
            Some(Some(Engine::Mysql))
        );
        assert!(set.check_engine(Engine::Mysql).is_ok());
        let errs = parse_files(Engine::Postgres, &prisma).expect_err("mysql files on postgres");
        assert!(errs[0].starts_with("m/migration_lock.toml:2: provider \"mysql\": the migrations are written for mysql, but the database shipgate migrates is postgres"), "{errs:?}");
    }

    #[test]
    fn rejects_non_utf8_with_the_offset() {
        let files = vec![("1_a.sql".to_string(), b"SELECT '\xff';".to_vec())];
        let err = parse(Path::new("m"), files).expect_err("must fail");
        assert_eq!(
            err.0[0].to_string(),
            "m/1_a.sql: not valid UTF-8 (invalid byte at offset 8)"
        );
    }

    #[test]
    fn checksum_ignores_crlf_and_bom_but_not_edits() {
        let lf = checksum(b"SELECT 1;\nSELECT 2;\n");
        assert_eq!(lf, checksum(b"SELECT 1;\r\nSELECT 2;\r\n"));
        assert_eq!(lf, checksum(b"\xef\xbb\xbfSELECT 1;\nSELECT 2;\n"));
        assert_ne!(lf, checksum(b"SELECT 1;\nSELECT 3;\n"));
        assert_eq!(
            checksum(b"").as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn a_directive_in_a_goose_or_dbmate_header_applies_to_the_up_section() {
        for text in [
            "-- shipgate:lock-timeout 10s\n-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n",
            "-- shipgate:lock-timeout 10s\n-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
        ] {
            let s = set(&[("1_a.sql", text)]).expect("valid");
            let m = &s.migrations[0];
            assert_eq!(
                m.up.directives.lock_timeout,
                Some(Duration::from_secs(10)),
                "{text}"
            );
            let down = m.down.as_ref().expect("a down section");
            assert_eq!(down.directives.lock_timeout, None, "{text}");
            assert_eq!(m.up.statements.len(), 1, "{text}");
        }
    }

    #[test]
    fn reads_directives() {
        let s = set(&[(
            "1_a.sql",
            "-- shipgate:no-transaction\n-- shipgate:lock-timeout 10s\n-- shipgate:statement-timeout 15m\n-- shipgate:contract\nSELECT 1;\n-- shipgate:allow drop-table kept for audit\nDROP TABLE x;",
        )])
        .expect("valid");
        let d = &s.migrations[0].up.directives;
        assert!(d.no_transaction && d.contract);
        assert_eq!(d.lock_timeout, Some(Duration::from_secs(10)));
        assert_eq!(d.statement_timeout, Some(Duration::from_secs(900)));
        assert_eq!(
            d.allows,
            vec![Allow {
                rule: "drop-table".into(),
                reason: "kept for audit".into(),
                line: 6
            }]
        );
        let sqlx = set(&[(
            "1_a.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);",
        )])
        .expect("valid");
        assert!(sqlx.migrations[0].up.directives.no_transaction);
    }

    #[test]
    fn allows_savepoints_inside_the_transaction() {
        let s = set(&[(
            "1_a.sql",
            "SAVEPOINT a;\nSELECT 1;\nROLLBACK TO SAVEPOINT a;\nRELEASE SAVEPOINT a;\n",
        )]);
        assert!(s.is_ok(), "{:?}", s.err());
    }

    #[test]
    fn strips_a_hand_written_transaction_wrapper() {
        let s = set(&[(
            "1_a.sql",
            "BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCOMMIT;\n",
        )])
        .expect("valid");
        let up = &s.migrations[0].up;
        // The bytes between the wrapper's statements, as written.
        assert_eq!(
            up.sql,
            "\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
        );
        assert_eq!(up.statements.len(), 2);
        let crlf = set(&[(
            "1_a.sql",
            "\u{feff}BEGIN;\r\nINSERT INTO t VALUES ('a\rb');\r\nCOMMIT;\r\n",
        )])
        .expect("valid");
        assert_eq!(
            crlf.migrations[0].up.sql, "\r\nINSERT INTO t VALUES ('a\rb');\r\n",
            "line endings and a CR inside a string are kept"
        );
        let nt = set(&[(
            "1_a.sql",
            "-- shipgate:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;",
        )])
        .expect("valid");
        assert_eq!(nt.migrations[0].up.statements.len(), 3);
    }
}

/// Property tests: the file-name parser and the directive parser never panic, accept exactly
/// what they promise, and give back what was written.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        // Bounded: these run in every `cargo test`.
        ProptestConfig {
            cases: 512,
            // A failure prints its minimal input; no regression files in the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_directory_validates_or_lists_its_problems(
            files in proptest::collection::vec(("\\PC{0,20}\\.sql", "\\PC{0,80}"), 0..6),
        ) {
            let files: Vec<(String, Vec<u8>)> =
                files.into_iter().map(|(n, c)| (n, c.into_bytes())).collect();
            match parse(Path::new("m"), files) {
                Ok(set) => prop_assert!(set.migrations.windows(2).all(|w| w[0].version < w[1].version)),
                Err(errors) => prop_assert!(!errors.0.is_empty()),
            }
        }

        #[test]
        fn any_comment_block_yields_directives_or_errors(text in "(-- ?(shipgate:)?\\PC{0,30}\n){0,5}\\PC{0,40}") {
            let mut errors = Vec::new();
            let d = directives(Path::new("f.sql"), &text, &mut errors);
            for e in &errors {
                prop_assert!(e.to_string().starts_with("f.sql:"), "{}", e);
            }
            for t in [d.lock_timeout, d.statement_timeout].into_iter().flatten() {
                prop_assert!(t <= MAX_SERVER_TIMEOUT);
            }
        }

        #[test]
        fn written_directives_read_back(
            no_transaction in any::<bool>(),
            contract in any::<bool>(),
            lock_ms in proptest::option::of(0u64..=i32::MAX as u64),
            statement_s in proptest::option::of(0u64..=2_000_000),
            rule in "[a-z][a-z-]{0,15}",
            reason in "[a-z][a-z ]{0,20}[a-z]",
        ) {
            let mut text = String::new();
            if no_transaction { text.push_str("-- shipgate:no-transaction\n"); }
            if contract { text.push_str("--shipgate:contract\n"); }
            if let Some(ms) = lock_ms { text.push_str(&format!("-- shipgate:lock-timeout {ms}ms\n")); }
            if let Some(s) = statement_s { text.push_str(&format!("--   shipgate:statement-timeout  {s}s\n")); }
            text.push_str(&format!("-- shipgate:allow {rule} {reason}\nSELECT 1;\n"));
            let mut errors = Vec::new();
            let d = directives(Path::new("f.sql"), &text, &mut errors);
            prop_assert!(errors.is_empty(), "{:?}", errors);
            prop_assert_eq!(d.no_transaction, no_transaction);
            prop_assert_eq!(d.contract, contract);
            prop_assert_eq!(d.lock_timeout, lock_ms.map(Duration::from_millis));
            prop_assert_eq!(d.statement_timeout, statement_s.map(Duration::from_secs));
            prop_assert_eq!(d.allows.len(), 1);
            prop_assert_eq!(&d.allows[0].rule, &rule);
        }

        #[test]
        fn a_timeout_past_the_servers_range_is_refused(ms in (i32::MAX as u64 + 1)..=1_000_000_000_000) {
            let text = format!("-- shipgate:lock-timeout {ms}ms\nSELECT 1;\n");
            let mut errors = Vec::new();
            let d = directives(Path::new("f.sql"), &text, &mut errors);
            prop_assert_eq!(d.lock_timeout, None);
            prop_assert_eq!(errors.len(), 1);
            prop_assert!(errors[0].to_string().contains("at most 24d"), "{}", errors[0]);
        }
    }
}
