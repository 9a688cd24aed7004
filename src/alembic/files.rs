//! Which files of the version locations are revisions, listed in the order Alembic loads them
//! (`Script._list_py_dir` and `_from_path`): each existing location in turn, its files sorted
//! by name, its subdirectories (sorted, depth first) only with `recursive_version_locations`,
//! `__pycache__` skipped; a file whose name ends in `.py` and does not start with `.#` or
//! `__init__` is a revision; a file reached twice (through two locations or a link) is read
//! once. Load order matters: Alembic breaks ties between branches by it.
//!
//! This is the module's only directory I/O; it reads no file's contents.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Alembic's `_only_source_rev_file` (`(?!\.\#|__init__)(.*\.py)$`).
pub fn is_revision_name(name: &str) -> bool {
    name.ends_with(".py") && !name.starts_with(".#") && !name.starts_with("__init__")
}

/// Alembic's `_sourceless_rev_file` without the `.py` case: a compiled file.
fn is_compiled_name(name: &str) -> bool {
    (name.ends_with(".pyc") || name.ends_with(".pyo"))
        && !name.starts_with(".#")
        && !name.starts_with("__init__")
}

/// What the listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Revision files in load order.
    pub files: Vec<PathBuf>,
    /// With `sourceless`: compiled files Alembic would load because no source is beside them.
    pub compiled: Vec<PathBuf>,
}

/// Lists the revision files of `locations` (absolute), as Alembic would load them.
pub fn list(
    locations: &[PathBuf],
    recursive: bool,
    sourceless: bool,
) -> Result<Listing, (PathBuf, io::Error)> {
    let mut listing = Listing::default();
    let mut seen = HashSet::new();
    for location in locations {
        // `vers.exists()`: a missing location is skipped.
        if fs::metadata(location).is_err() {
            continue;
        }
        walk(location, recursive, sourceless, &mut seen, &mut listing)?;
    }
    Ok(listing)
}

fn walk(
    dir: &Path,
    recursive: bool,
    sourceless: bool,
    seen: &mut HashSet<PathBuf>,
    listing: &mut Listing,
) -> Result<(), (PathBuf, io::Error)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // os.walk ignores a location it cannot list (a file, or unreadable).
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(()),
        Err(e) => return Err((dir.to_owned(), e)),
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| (dir.to_owned(), e))?;
        let path = entry.path();
        // os.walk: a link to a directory is listed with the directories (and not followed),
        // anything else, a dangling link included, with the files.
        let is_dir = fs::metadata(&path).is_ok_and(|m| m.is_dir());
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        if is_dir {
            if !is_link {
                dirs.push(path);
            }
        } else {
            files.push(entry.file_name());
        }
    }
    let skip_files = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("__pycache__"));
    if !skip_files {
        files.sort();
        let names: HashSet<String> = files
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        for name in &files {
            let text = name.to_string_lossy();
            let path = dir.join(name);
            if is_revision_name(&text) {
                // `file_path.resolve()`: the same file through two paths is read once.
                let real = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if seen.insert(real) {
                    listing.files.push(path);
                }
            } else if sourceless && is_compiled_name(&text) {
                let source = &text[..text.len() - 1];
                let shadowed = names.contains(source)
                    || (text.ends_with(".pyo") && names.contains(&format!("{source}c")));
                if !shadowed {
                    listing.compiled.push(path);
                }
            }
        }
        if sourceless {
            let cache = dir.join("__pycache__");
            if let Ok(entries) = fs::read_dir(&cache) {
                let stems: HashSet<String> = names
                    .iter()
                    .map(|n| n.split('.').next().unwrap_or_default().to_owned())
                    .collect();
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !stems.contains(name.split('.').next().unwrap_or_default()) {
                        listing.compiled.push(entry.path());
                    }
                }
            }
        }
    }
    if recursive {
        dirs.sort();
        for sub in dirs {
            walk(&sub, recursive, sourceless, seen, listing)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names_follow_alembics_pattern() {
        for (name, want) in [
            ("1a2b_add_users.py", true),
            ("_private.py", true),
            (".hidden.py", true),
            ("a.b.py", true),
            ("__init__.py", false),
            ("__init__old.py", false),
            (".#1a2b_add.py", false),
            ("1a2b.pyc", false),
            ("1a2b.py.orig", false),
            ("README", false),
            ("script.py.mako", false),
        ] {
            assert_eq!(is_revision_name(name), want, "{name}");
        }
    }

    #[test]
    fn listing_orders_and_filters_as_alembic_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v = dir.path().join("versions");
        for f in [
            "b.py",
            "a.py",
            "__init__.py",
            "notes.txt",
            "sub/c.py",
            "sub/deeper/d.py",
            "__pycache__/a.cpython-311.pyc",
            "zz/e.py",
        ] {
            let p = v.join(f);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, "").expect("write");
        }
        let names = |l: &Listing| -> Vec<String> {
            l.files
                .iter()
                .map(|p| p.strip_prefix(&v).expect("inside").display().to_string())
                .collect()
        };
        let flat = list(std::slice::from_ref(&v), false, false).expect("list");
        assert_eq!(names(&flat), ["a.py", "b.py"]);
        let deep = list(
            &[v.clone(), dir.path().join("missing"), v.clone()],
            true,
            false,
        )
        .expect("list");
        assert_eq!(
            names(&deep),
            ["a.py", "b.py", "sub/c.py", "sub/deeper/d.py", "zz/e.py"]
        );
        assert!(deep.compiled.is_empty());
        fs::write(v.join("z.pyc"), "").expect("write");
        fs::write(v.join("b.pyc"), "").expect("write");
        let compiled = list(std::slice::from_ref(&v), false, true).expect("list");
        assert_eq!(compiled.compiled, [v.join("z.pyc")]);
    }
}
