//! `shipgate new`: a migration file (pair) in the directory's own layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use heck::ToSnakeCase as _;

use crate::cli;
use crate::config::Config;
use crate::exit::{Exit, Failure};
use crate::migrate::layout::{self, Choice, Layout};
use crate::migrate::source;

use super::out;

/// `name` in snake_case (heck's word boundaries: case changes, digits, punctuation), in lower-case
/// ASCII letters, digits and `_` only: anything else separates words, so the file name is
/// portable.
pub fn snake_case(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    ascii.to_snake_case()
}

/// `shipgate new NAME`.
pub fn new(args: &cli::New, config: &Config) -> Result<Exit, Failure> {
    let name = snake_case(&args.name);
    if name.is_empty() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("migration name {:?} has no letters or digits", args.name),
        ));
    }
    let dir = &config.migrations;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating migrations directory {}", dir.display()))
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    // The directory's layout (detected, or the configured one); an empty or unreadable
    // directory gets the configured layout, or shipgate's own.
    let loaded = source::load_unread(dir, &config.layout);
    let layout = match (&loaded, config.layout.choice) {
        (Ok(set), _) => set.layout,
        (Err(_), Choice::Forced(layout)) => layout,
        (Err(_), Choice::Auto) => Layout::Native,
    };
    // A layout whose own file `new` rewrites (Atlas's sum) must validate first: rewriting the
    // sum over an edited file would bless the edit.
    if let Err(errors) = &loaded {
        let rewritten = layout::CHECKS
            .iter()
            .filter(|c| c.rewrite.is_some())
            .find(|c| c.layout == layout || dir.join(c.own).exists());
        if let Some(c) = rewritten {
            return Err(Failure::new(
                Exit::Invalid,
                anyhow::anyhow!(
                    "{errors}\n`shipgate new` rewrites {} after adding a migration, so the directory must validate first (a rewritten sum would accept every problem above): fix it, then run `shipgate new` again",
                    c.own
                ),
            ));
        }
    }
    let loaded = loaded.ok();
    let taken = existing_versions(dir);
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let stamp = now
        .format(&format)
        .map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
    let mut version: i64 = stamp
        .parse()
        .map_err(|e| Failure::new(Exit::MigrationFailed, anyhow::Error::new(e)))?;
    // Two `new` in one second: take the next free number rather than fail.
    while taken.contains(&version) {
        version += 1;
    }
    let next = loaded
        .as_ref()
        .and_then(|set| set.head())
        .and_then(|v| v.to_string().split('.').next()?.parse::<u64>().ok())
        .map_or(1, |n| n + 1);
    let stamp = version.to_string();
    let files: Vec<_> = layout
        .template(&layout::New {
            stamp: &stamp,
            next,
            name: &name,
            down: !args.no_down,
            options: &config.layout,
        })
        .into_iter()
        .map(|(file, text)| (dir.join(file), text))
        .collect();
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))
                .map_err(|e| Failure::new(Exit::Usage, e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))
            .map_err(|e| Failure::new(Exit::Usage, e))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))
            .map_err(|e| Failure::new(Exit::Usage, e))?;
        out(format!("created {}", path.display()));
    }
    if let Some(checks) = layout.checks().filter(|c| c.rewrite.is_some()) {
        let path =
            rewrite_own_file(dir, checks).map_err(|e| Failure::new(Exit::MigrationFailed, e))?;
        out(format!("updated {}", path.display()));
    }
    Ok(Exit::Success)
}

/// Rewrites a layout's own file for the files now in `dir` (Atlas's `atlas.sum`, as `atlas
/// migrate hash` would), through a temporary file renamed over it.
fn rewrite_own_file(dir: &Path, checks: &layout::Checks) -> anyhow::Result<PathBuf> {
    let rewrite = checks
        .rewrite
        .context("only layouts that rewrite their own file get here")?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Hidden entries are skipped as `source` skips them.
        if !name.starts_with('.') && (checks.reads)(&name) && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort_unstable();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((name, bytes));
    }
    let listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let path = dir.join(checks.own);
    let temporary = dir.join(format!(".{}.shipgate-new", checks.own));
    std::fs::write(&temporary, rewrite(&listed))
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

fn existing_versions(dir: &Path) -> std::collections::HashSet<i64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            // diesel's directories write the timestamp with dashes.
            let version: String = name
                .split_once('_')?
                .0
                .chars()
                .filter(|&c| c != '-')
                .collect();
            version.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_names() {
        let cases = [
            ("add users email", "add_users_email"),
            ("AddUsersEmail", "add_users_email"),
            ("add-users.v2", "add_users_v2"),
            ("  --Hello World!! ", "hello_world"),
            ("!!!", ""),
            ("HTTPServer timeout", "http_server_timeout"),
            ("naïve names", "na_ve_names"),
        ];
        for (input, want) in cases {
            assert_eq!(snake_case(input), want, "{input}");
        }
    }
}
