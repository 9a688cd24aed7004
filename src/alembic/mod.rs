//! Alembic's state without Python: an Alembic project's revision graph read statically, so a
//! deploy can tell "nothing pending" from `alembic_version`'s rows without starting Python
//! (Alembic's own no-op costs about a second).
//!
//! [`Project::load`] reads the configuration (`config.rs`, with `ini.rs` for `alembic.ini`),
//! lists the revision files (`files.rs`), reads each one's module-level literals
//! (`revision.rs` over `lexer.rs`) and builds the graph (`graph.rs`); [`Project::state`]
//! compares the graph with the rows. Every step follows Alembic's own source (1.16 to 1.18):
//! where Alembic would run Python shipgate cannot evaluate, loading fails with an error naming
//! the file and line, never a guess.
//!
//! This module reads files and nothing else: it opens no database connection and starts no
//! process. Running Alembic, reading `alembic_version` and the lock belong to the runner.

mod config;
mod files;
mod graph;
mod ini;
mod lexer;
pub mod offline;
mod revision;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use config::{Config, Sources, VersionTable};
pub use graph::{Graph, GraphError, State, Step};
pub use revision::Revision;

/// Revision files larger than this are refused rather than read (a migration is code, and a
/// file this large is not one Alembic's authors write).
const MAX_FILE_SIZE: u64 = 16 << 20;

/// One reason an Alembic project cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file or option.
    #[error("{}{}: {problem}", file.display(), at(*line))]
    Config {
        /// `alembic.ini` or `pyproject.toml`.
        file: PathBuf,
        /// 1-based line, or 0.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A file or directory that cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// A revision file that cannot be read statically.
    #[error("{}{}: {problem}", file.display(), at(*line))]
    Revision {
        /// The file.
        file: PathBuf,
        /// 1-based line, or 0 for the file as a whole.
        line: usize,
        /// What is wrong, naming the variable.
        problem: String,
    },
    /// The revisions do not form a graph Alembic can walk.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

fn at(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// Every reason a project could not be loaded (at least one).
#[derive(Debug)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Error> for Errors {
    fn from(e: Error) -> Self {
        Errors(vec![e])
    }
}

/// An Alembic project: where its revisions are, and their graph.
#[derive(Debug, Clone)]
pub struct Project {
    /// Where the revision files were found, and the version table's defaults.
    pub config: Config,
    /// The revision graph.
    pub graph: Graph,
}

impl Project {
    /// Loads the project `alembic -c path` would run in `path`'s directory: `path` is an
    /// `alembic.ini` (read with the `pyproject.toml` beside it, if any) or a `pyproject.toml`
    /// (read with the `alembic.ini` beside it, if any).
    pub fn load(path: impl AsRef<Path>) -> Result<Project, Errors> {
        Project::load_from(&Sources::beside(path.as_ref()))
    }

    /// Loads the project from explicit sources (another working directory or INI section).
    pub fn load_from(sources: &Sources) -> Result<Project, Errors> {
        let ini = read_optional(&sources.ini)?;
        let toml = read_optional(&sources.pyproject)?;
        if ini.is_none() && toml.is_none() {
            return Err(Error::Io {
                path: sources.ini.clone(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("neither it nor {} exists", sources.pyproject.display()),
                ),
            }
            .into());
        }
        let config = config::resolve(sources, ini.as_deref(), toml.as_deref()).map_err(|e| {
            Error::Config {
                file: e.file,
                line: e.line,
                problem: e.problem,
            }
        })?;
        if fs::metadata(&config.script_location).is_err() {
            return Err(Error::Config {
                file: sources.ini.clone(),
                line: 0,
                problem: format!(
                    "script_location {} does not exist (Alembic: \"Path doesn't exist\")",
                    config.script_location.display()
                ),
            }
            .into());
        }
        let listing = files::list(
            &config.version_locations,
            config.recursive,
            config.sourceless,
        )
        .map_err(|(path, source)| Error::Io { path, source })?;
        let mut errors: Vec<Error> = listing
            .compiled
            .iter()
            .map(|file| Error::Revision {
                file: file.clone(),
                line: 0,
                problem: "a compiled revision without its source (sourceless = true); shipgate reads only .py files".into(),
            })
            .collect();
        let mut revisions = Vec::with_capacity(listing.files.len());
        for file in &listing.files {
            match read_file(file) {
                Ok(bytes) => match revision::parse(file, &bytes) {
                    Ok(rev) => revisions.push(rev),
                    Err(problems) => errors.extend(problems.into_iter().map(|p| Error::Revision {
                        file: file.clone(),
                        line: p.line,
                        problem: p.problem,
                    })),
                },
                Err(source) => errors.push(Error::Io {
                    path: file.clone(),
                    source,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(Errors(errors));
        }
        let graph = Graph::build(revisions)
            .map_err(|es| Errors(es.into_iter().map(Error::Graph).collect()))?;
        Ok(Project { config, graph })
    }

    /// What `alembic_version`'s rows (full revision ids) say: applied, pending in the order
    /// `alembic upgrade heads` runs it, unknown and overlapping rows, heads.
    pub fn state(&self, rows: &[String]) -> State {
        self.graph.state(rows)
    }
}

/// A configuration file's text, `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| Error::Config {
                file: path.to_owned(),
                line: 0,
                problem: format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A revision file's bytes: a regular file (a link to one included) up to `MAX_FILE_SIZE`.
fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB", MAX_FILE_SIZE >> 20),
        ));
    }
    fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = root.join(name);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
    }

    #[test]
    fn a_project_loads_and_says_what_is_pending() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("alembic.ini", "[alembic]\nscript_location = %(here)s/migrations\n"),
                ("migrations/env.py", "import context\n"),
                ("migrations/versions/__init__.py", ""),
                ("migrations/versions/1_first.py", "\"\"\"first\n\nRevision ID: a1\n\"\"\"\nrevision = 'a1'\ndown_revision = None\n"),
                ("migrations/versions/2_second.py", "\"\"\"second\"\"\"\nrevision: str = 'b2'\ndown_revision: str = 'a1'\n"),
            ],
        );
        let project = Project::load(dir.path().join("alembic.ini")).expect("load");
        assert_eq!(
            project.config.version_locations,
            [dir.path().join("migrations/versions")]
        );
        assert_eq!(project.config.version_table.name, "alembic_version");
        let state = project.state(&["a1".to_owned()]);
        assert_eq!(state.applied, ["a1"]);
        assert_eq!(
            state.pending,
            [Step {
                revision: "b2".into(),
                message: "second".into(),
                file: dir.path().join("migrations/versions/2_second.py"),
                down_revisions: vec!["a1".into()],
                depends_on: vec![],
            }]
        );
        assert!(project.state(&["b2".to_owned()]).is_current());
    }

    #[test]
    fn every_error_is_collected_with_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                (
                    "pyproject.toml",
                    "[tool.alembic]\nscript_location = \"%(here)s/m\"\n",
                ),
                (
                    "m/versions/a.py",
                    "revision = 'a'\ndown_revision = PREVIOUS\n",
                ),
                ("m/versions/b.py", "revision = f'b'\ndown_revision = None\n"),
            ],
        );
        let errors = Project::load(dir.path().join("pyproject.toml")).expect_err("two bad files");
        let text = errors.to_string();
        assert!(
            text.contains("m/versions/a.py:2: `down_revision` is not a literal"),
            "{text}"
        );
        assert!(
            text.contains("m/versions/b.py:1: `revision` is not a literal"),
            "{text}"
        );
    }

    #[test]
    fn missing_configuration_and_script_location_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Project::load(dir.path().join("alembic.ini")).expect_err("nothing there");
        assert!(e.to_string().contains("neither it nor"), "{e}");
        write(
            dir.path(),
            &[("alembic.ini", "[alembic]\nscript_location = nowhere\n")],
        );
        let e = Project::load(dir.path().join("alembic.ini")).expect_err("no script_location");
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
