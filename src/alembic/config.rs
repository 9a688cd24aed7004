//! Where an Alembic project keeps its revision files, decided as Alembic 1.16+ decides it
//! (`alembic/config.py`, `ScriptDirectory.from_config`): each option from the `[alembic]`
//! section of `alembic.ini` when it is there, else from `[tool.alembic]` in `pyproject.toml`;
//! `script_location`, `version_locations` (split by `path_separator`, the deprecated
//! `version_path_separator`, or the legacy space/comma rule; a list in TOML),
//! `recursive_version_locations` and `sourceless`; `%(here)s` is the directory of the file the
//! option came from. Relative paths are relative to the working directory Alembic would run in.
//!
//! Pure: it is handed the files' text ([`Sources`] names them; `mod.rs` reads them). It does
//! not check that directories exist, and never reads `env.py`, which may choose another
//! version table (see [`VersionTable`]).

use std::path::{Path, PathBuf};

use super::ini::{expand, Ini};

/// The files Alembic's command line reads and the directory it runs in: `alembic -c X` reads
/// `X` and `pyproject.toml` (or `pyproject.toml` and `alembic.ini`) relative to its working
/// directory, either of which may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The INI file (`alembic.ini`).
    pub ini: PathBuf,
    /// The `pyproject.toml` whose `[tool.alembic]` fills in options the INI lacks.
    pub pyproject: PathBuf,
    /// The working directory relative paths are resolved against.
    pub cwd: PathBuf,
    /// The INI section (`alembic`; `alembic -n NAME` names another).
    pub section: String,
}

impl Sources {
    /// What `alembic -c path` reads when run in `path`'s directory: the named file and its
    /// sibling (`alembic.ini` beside a `pyproject.toml`, `pyproject.toml` beside an INI file).
    pub fn beside(path: &Path) -> Sources {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let dir = path.parent().map(Path::to_owned).unwrap_or_default();
        let (ini, pyproject) = if path.file_name().is_some_and(|n| n == "pyproject.toml") {
            (dir.join("alembic.ini"), path.clone())
        } else {
            (path.clone(), dir.join("pyproject.toml"))
        };
        Sources {
            ini,
            pyproject,
            cwd: dir,
            section: "alembic".to_owned(),
        }
    }
}

/// The table Alembic records applied revisions in. `env.py` may pass another name or a schema
/// to `context.configure(version_table=…, version_table_schema=…)`, which shipgate cannot read:
/// the caller sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    /// `alembic_version` unless `env.py` says otherwise.
    pub name: String,
    /// `None`: the connection's default schema.
    pub schema: Option<String>,
}

impl Default for VersionTable {
    fn default() -> Self {
        VersionTable {
            name: "alembic_version".to_owned(),
            schema: None,
        }
    }
}

/// Where the revision files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `script_location`, absolute (Alembic requires it to exist).
    pub script_location: PathBuf,
    /// The directories listed for revisions, absolute, in order: `version_locations`, else
    /// `<script_location>/versions`. One that does not exist is skipped, as Alembic does.
    pub version_locations: Vec<PathBuf>,
    /// `recursive_version_locations`: subdirectories are read too.
    pub recursive: bool,
    /// `sourceless`: `.pyc` files without a source count as revisions (shipgate refuses
    /// those, since it reads source).
    pub sourceless: bool,
    /// The version table's defaults; the caller overrides them when `env.py` does.
    pub version_table: VersionTable,
}

/// A problem with a configuration file, at a line when the INI file has one (0: none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the option came from.
    pub file: PathBuf,
    /// 1-based line in an INI file, or 0.
    pub line: usize,
    /// What is wrong, in lower case, naming the option.
    pub problem: String,
}

/// A file's text (or `None` when it does not exist).
pub type Text<'a> = Option<&'a str>;

/// Decides the [`Config`] from the INI and `pyproject.toml` texts named by `sources`.
pub fn resolve(
    sources: &Sources,
    ini_text: Text<'_>,
    toml_text: Text<'_>,
) -> Result<Config, ConfigError> {
    let ini_err = |line: usize, problem: String| ConfigError {
        file: sources.ini.clone(),
        line,
        problem,
    };
    let toml_err = |problem: String| ConfigError {
        file: sources.pyproject.clone(),
        line: 0,
        problem,
    };
    let ini_here = here(&sources.ini);
    let ini = match ini_text {
        Some(text) => {
            if text.starts_with('\u{feff}') {
                return Err(ini_err(
                    1,
                    "starts with a byte order mark, which configparser reads as part of the first line".into(),
                ));
            }
            Ini::parse(text, &[("here", &ini_here)]).map_err(|e| ini_err(e.line, e.problem))?
        }
        None => Ini::default(),
    };
    let toml = match toml_text {
        Some(text) => Toml::parse(text, &here(&sources.pyproject)).map_err(toml_err)?,
        None => Toml::default(),
    };
    let section = sources.section.as_str();
    let ini_get = |key: &str| {
        ini.get(section, key)
            .map_err(|e| ini_err(e.line, e.problem))
    };

    // get_alembic_option("script_location")
    let script_location = match ini_get("script_location")? {
        Some((value, line)) => path_of(&sources.cwd, &value)
            .map_err(|p| ini_err(line, format!("script_location: {p}")))?,
        None => match toml.string("script_location").map_err(toml_err)? {
            Some(value) => path_of(&sources.cwd, &value)
                .map_err(|p| toml_err(format!("script_location: {p}")))?,
            None => {
                return Err(ini_err(
                    0,
                    format!(
                    "no `script_location` in its [{section}] section, nor in [tool.alembic] of {}",
                    sources.pyproject.display()
                ),
                ))
            }
        },
    };

    // get_version_locations_list()
    let mut version_locations = Vec::new();
    match ini_get("version_locations")? {
        Some((value, line)) if !value.is_empty() => {
            let separator = match ini_get("path_separator")? {
                Some(sep) => Some(sep),
                None => ini_get("version_path_separator")?,
            };
            let items = match separator {
                None => legacy_split(&value),
                Some((sep, sep_line)) => {
                    let sep = match sep.as_str() {
                        "space" => " ",
                        "newline" => "\n",
                        "os" | ":" => ":",
                        ";" => ";",
                        other => {
                            return Err(ini_err(
                                sep_line,
                                format!("path_separator: '{other}' is not a valid value; expected 'space', 'newline', 'os', ':', ';'"),
                            ))
                        }
                    };
                    value
                        .split(sep)
                        .filter(|x| !x.is_empty())
                        .map(|x| x.trim_matches(super::lexer::is_py_space).to_owned())
                        .collect()
                }
            };
            for item in items {
                version_locations.push(
                    path_of(&sources.cwd, &item)
                        .map_err(|p| ini_err(line, format!("version_locations: {p}")))?,
                );
            }
        }
        _ => {
            if let Some(items) = toml.list("version_locations").map_err(toml_err)? {
                for item in items {
                    version_locations.push(
                        path_of(&sources.cwd, &item)
                            .map_err(|p| toml_err(format!("version_locations: {p}")))?,
                    );
                }
            }
        }
    }
    if version_locations.is_empty() {
        version_locations.push(script_location.join("versions"));
    }

    // get_alembic_boolean_option(): the INI's exact "true", else a TOML boolean.
    let boolean = |key: &str| -> Result<bool, ConfigError> {
        match ini_get(key)? {
            Some((value, _)) => Ok(value == "true"),
            None => toml.boolean(key).map_err(toml_err),
        }
    };
    Ok(Config {
        script_location,
        recursive: boolean("recursive_version_locations")?,
        sourceless: boolean("sourceless")?,
        version_locations,
        version_table: VersionTable::default(),
    })
}

/// A directory as `Path(x).absolute()` gives it: relative to the working directory, `""` being
/// the working directory itself. `package:path` names a Python package resource, which only
/// Python can resolve.
fn path_of(cwd: &Path, value: &str) -> Result<PathBuf, String> {
    if !value.starts_with('/') && value.contains(':') {
        return Err(format!(
            "`{value}` names a Python package resource (package:path), which shipgate cannot resolve without Python; give a directory"
        ));
    }
    Ok(if value.is_empty() {
        cwd.to_owned()
    } else {
        cwd.join(value)
    })
}

/// `%(here)s`: the file's directory as `Path(file).absolute().parent.as_posix()` gives it.
fn here(file: &Path) -> String {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    file.parent()
        .unwrap_or(Path::new(""))
        .to_string_lossy()
        .into_owned()
}

/// Alembic's legacy split when no separator is configured: `re.split(r", *|(?: +)", value)`.
fn legacy_split(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' => {
                while chars.next_if_eq(&' ').is_some() {}
                items.push(std::mem::take(&mut current));
            }
            ' ' => {
                while chars.next_if_eq(&' ').is_some() {}
                items.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    items.push(current);
    items
}

/// `[tool.alembic]` of a `pyproject.toml`.
#[derive(Debug, Default)]
struct Toml {
    table: toml::Table,
    here: String,
}

impl Toml {
    fn parse(text: &str, here: &str) -> Result<Toml, String> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
        let table = match doc.get("tool").and_then(|t| t.get("alembic")) {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => {
                return Err(
                    "[tool.alembic] is not a table (Alembic: \"Incorrect TOML format\")".into(),
                )
            }
        };
        Ok(Toml {
            table,
            here: here.to_owned(),
        })
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => self.format(key, s).map(Some),
            Some(_) => Err(format!("[tool.alembic] {key} must be a string")),
        }
    }

    fn list(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => self.format(key, s),
                    _ => Err(format!("[tool.alembic] {key} must be a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(format!("[tool.alembic] {key} must be a list of strings")),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, String> {
        match self.table.get(key) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(_) => Err(format!("boolean value expected for TOML parameter '{key}'")),
        }
    }

    /// Python's `value % {"here": …}`: `%(here)s` and `%%`, nothing else.
    fn format(&self, key: &str, value: &str) -> Result<String, String> {
        let mut out = String::new();
        expand(value, &mut out, |var, out| {
            if var == "here" {
                out.push_str(&self.here);
                Ok(())
            } else {
                Err(format!("%({var})s: only %(here)s is defined"))
            }
        })
        .map_err(|e| format!("[tool.alembic] {key}: {e}"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources {
        Sources {
            ini: PathBuf::from("/p/alembic.ini"),
            pyproject: PathBuf::from("/p/pyproject.toml"),
            cwd: PathBuf::from("/cwd"),
            section: "alembic".to_owned(),
        }
    }

    fn locations(ini: Text<'_>, toml: Text<'_>) -> Result<(PathBuf, Vec<PathBuf>), ConfigError> {
        resolve(&sources(), ini, toml).map(|c| (c.script_location, c.version_locations))
    }

    fn paths(ps: &[&str]) -> Vec<PathBuf> {
        ps.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn locations_follow_alembics_rules() {
        let cases: &[(Text<'_>, Text<'_>, &str, &[&str])] = &[
            (Some("[alembic]\nscript_location = %(here)s/alembic\n"), None, "/p/alembic", &["/p/alembic/versions"]),
            (Some("[alembic]\nscript_location = alembic\n"), None, "/cwd/alembic", &["/cwd/alembic/versions"]),
            (Some("[alembic]\nscript_location = /abs\n"), None, "/abs", &["/abs/versions"]),
            // Legacy split: commas and runs of spaces (an empty item is the working directory).
            (Some("[alembic]\nscript_location = a\nversion_locations = %(here)s/v1 v2,  v3, v4\n"), None, "/cwd/a", &["/p/v1", "/cwd/v2", "/cwd/v3", "/cwd/v4"]),
            (Some("[alembic]\nscript_location = a\nversion_locations = v1 ,v2\n"), None, "/cwd/a", &["/cwd/v1", "/cwd", "/cwd/v2"]),
            (Some("[alembic]\nscript_location = a\npath_separator = os\nversion_locations = v 1:v2\n"), None, "/cwd/a", &["/cwd/v 1", "/cwd/v2"]),
            (Some("[alembic]\nscript_location = a\nversion_path_separator = ;\nversion_locations = v1; v2;\n"), None, "/cwd/a", &["/cwd/v1", "/cwd/v2"]),
            (Some("[alembic]\nscript_location = a\npath_separator = newline\nversion_locations =\n  v1\n  v2\n"), None, "/cwd/a", &["/cwd/v1", "/cwd/v2"]),
            (Some("[alembic]\nscript_location = a\npath_separator = space\nversion_locations = v1  v2\n"), None, "/cwd/a", &["/cwd/v1", "/cwd/v2"]),
            // path_separator wins over the deprecated name.
            (Some("[alembic]\nscript_location = a\npath_separator = ;\nversion_path_separator = space\nversion_locations = v 1;v2\n"), None, "/cwd/a", &["/cwd/v 1", "/cwd/v2"]),
            // An empty version_locations falls back to the default.
            (Some("[alembic]\nscript_location = a\nversion_locations =\n"), None, "/cwd/a", &["/cwd/a/versions"]),
            // pyproject.toml fills in what the INI lacks; %(here)s is the TOML file's directory.
            (None, Some("[tool.alembic]\nscript_location = \"%(here)s/migrations\"\nversion_locations = [\"%(here)s/a\", \"b\"]\n"), "/p/migrations", &["/p/a", "/cwd/b"]),
            (Some("[alembic]\nsqlalchemy.url = x\n"), Some("[tool.alembic]\nscript_location = \"m\"\n"), "/cwd/m", &["/cwd/m/versions"]),
            (Some("[alembic]\nscript_location = ini\n"), Some("[tool.alembic]\nscript_location = \"toml\"\nversion_locations = [\"t\"]\n"), "/cwd/ini", &["/cwd/t"]),
            (Some("[alembic]\nscript_location = ini\nversion_locations = i\n"), Some("[tool.alembic]\nversion_locations = [\"t\"]\n"), "/cwd/ini", &["/cwd/i"]),
            (Some("[DEFAULT]\nscript_location = d\n"), Some("[tool.alembic]\nscript_location = \"t\"\n"), "/cwd/t", &["/cwd/t/versions"]),
            (Some("[DEFAULT]\nscript_location = d\n[alembic]\n"), None, "/cwd/d", &["/cwd/d/versions"]),
        ];
        for (ini, toml, script, versions) in cases {
            let got = locations(*ini, *toml).unwrap_or_else(|e| panic!("{ini:?} {toml:?}: {e:?}"));
            assert_eq!(
                got,
                (PathBuf::from(script), paths(versions)),
                "{ini:?} {toml:?}"
            );
        }
    }

    #[test]
    fn flags_read_as_alembic_reads_them() {
        let c = resolve(&sources(), Some("[alembic]\nscript_location = a\nrecursive_version_locations = true\nsourceless = True\n"), None).expect("config");
        assert!(c.recursive);
        assert!(!c.sourceless, "the INI takes only the exact word true");
        let c = resolve(
            &sources(),
            None,
            Some("[tool.alembic]\nscript_location = \"a\"\nrecursive_version_locations = true\n"),
        )
        .expect("config");
        assert!(c.recursive);
        assert_eq!(c.version_table, VersionTable::default());
    }

    #[test]
    fn what_alembic_refuses_is_refused() {
        let cases: &[(Text<'_>, Text<'_>, &str, usize, &str)] = &[
            (Some("[alembic]\nsqlalchemy.url = x\n"), None, "/p/alembic.ini", 0, "no `script_location`"),
            (None, None, "/p/alembic.ini", 0, "no `script_location`"),
            (Some("[alembic]\nscript_location = myapp:migrations\n"), None, "/p/alembic.ini", 2, "package resource"),
            (Some("[alembic]\nscript_location = a\npath_separator = comma\nversion_locations = x\n"), None, "/p/alembic.ini", 3, "not a valid value"),
            (Some("[alembic]\nscript_location = 50%\n"), None, "/p/alembic.ini", 2, "must be followed"),
            (Some("\u{feff}[alembic]\nscript_location = a\n"), None, "/p/alembic.ini", 1, "byte order mark"),
            (None, Some("[tool.alembic]\nscript_location = 3\n"), "/p/pyproject.toml", 0, "must be a string"),
            (None, Some("[tool.alembic]\nscript_location = \"a\"\nversion_locations = \"v\"\n"), "/p/pyproject.toml", 0, "list of strings"),
            (None, Some("[tool.alembic]\nscript_location = \"a\"\nsourceless = \"true\"\n"), "/p/pyproject.toml", 0, "boolean value expected"),
            (None, Some("[tool.alembic]\nscript_location = \"%(root)s/a\"\n"), "/p/pyproject.toml", 0, "only %(here)s is defined"),
            (None, Some("[tool]\nalembic = 3\n"), "/p/pyproject.toml", 0, "not a table"),
            (None, Some("[tool.alembic\n"), "/p/pyproject.toml", 0, "not valid TOML"),
        ];
        for (ini, toml, file, line, words) in cases {
            let e = resolve(&sources(), *ini, *toml).expect_err(words);
            assert_eq!((e.file.to_str(), e.line), (Some(*file), *line), "{e:?}");
            assert!(e.problem.contains(words), "{e:?}");
        }
    }

    #[test]
    fn sources_beside_a_file() {
        let s = Sources::beside(Path::new("/srv/app/alembic.ini"));
        assert_eq!(s.pyproject, PathBuf::from("/srv/app/pyproject.toml"));
        assert_eq!(s.cwd, PathBuf::from("/srv/app"));
        let s = Sources::beside(Path::new("/srv/app/pyproject.toml"));
        assert_eq!(s.ini, PathBuf::from("/srv/app/alembic.ini"));
    }
}
