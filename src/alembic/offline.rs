//! Alembic's offline mode (`alembic upgrade START:END --sql`), read without Python: which
//! ranges render a chosen set of revisions while skipping the ones that cannot render, how the
//! output is cut into revisions, and which revision files ask for a live connection.
//!
//! Facts of Alembic 1.20 this follows (`runtime/migration.py`): offline, each revision's SQL
//! follows a `-- Running upgrade FROM -> REV` line (`static_output` of the step's
//! `short_log`, REV the revision's own id); `START:END` renders every revision that END
//! descends from and START does not, START itself excluded, and START is one revision or
//! `base`; `op.get_bind()`, `context.get_bind()` and `op.get_context().bind` are a mock
//! connection that prints what it executes and returns `None`, so code that reads a result
//! fails and code that decides from one renders SQL that is not what runs online.
//!
//! Pure: it starts no process and reads no file; the caller runs Alembic.

use std::collections::{BTreeMap, HashSet};

use super::Graph;

/// One `alembic upgrade START:END --sql` run: what it renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// START: `None` is `base`.
    pub start: Option<String>,
    /// END: `None` is `heads`.
    pub end: Option<String>,
    /// The revisions it renders.
    pub renders: HashSet<String>,
}

impl Range {
    /// The revision argument: `base:heads`, `a1:heads`, `a1:c3`.
    pub fn argument(&self) -> String {
        format!(
            "{}:{}",
            self.start.as_deref().unwrap_or("base"),
            self.end.as_deref().unwrap_or("heads")
        )
    }
}

/// A wanted revision no range can render: every range to it would run `because`, revisions
/// that cannot render, in branches no single START skips together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The revision.
    pub revision: String,
    /// The revisions in its way.
    pub because: Vec<String>,
}

/// The ranges that render every revision of `wanted` not in `skip` without running any
/// revision of `skip`: as few Alembic runs as the graph allows (one when nothing is skipped).
/// `at` is the database's one current revision, when it has exactly one: a range may start
/// there instead of at `base` (less to render).
pub fn ranges(
    graph: &Graph,
    wanted: &[String],
    skip: &HashSet<String>,
    at: Option<&str>,
) -> (Vec<Range>, Vec<Unreachable>) {
    let below = |id: &str| graph.ancestors(&[id.to_owned()]);
    let everything: HashSet<String> = graph.revisions().iter().map(|r| r.id.clone()).collect();
    let at_below = at.map(below);
    // Each wanted revision's START: the one revision (or base) below which every skipped
    // revision it descends from lies.
    let mut groups: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
    let mut unreachable = Vec::new();
    for id in wanted.iter().filter(|id| !skip.contains(*id)) {
        let mine = below(id);
        let blocked: Vec<String> = mine.intersection(skip).cloned().collect();
        let start = match (&at, &at_below) {
            (Some(at), Some(at_below))
                if !at_below.contains(id) && blocked.iter().all(|b| at_below.contains(b)) =>
            {
                Some(Some((*at).to_owned()))
            }
            _ if blocked.is_empty() => Some(None),
            _ => blocked
                .iter()
                .find(|b| {
                    let under = below(b);
                    blocked.iter().all(|other| under.contains(other))
                })
                .map(|b| Some(b.clone())),
        };
        match start {
            Some(start) => groups.entry(start).or_default().push(id.clone()),
            None => {
                let mut because = blocked;
                because.sort();
                unreachable.push(Unreachable {
                    revision: id.clone(),
                    because,
                });
            }
        }
    }
    let mut out = Vec::new();
    for (start, members) in groups {
        let above_start = start.as_deref().map(below).unwrap_or_default();
        let whole: HashSet<String> = everything.difference(&above_start).cloned().collect();
        if whole.is_disjoint(skip) {
            out.push(Range {
                start,
                end: None,
                renders: whole,
            });
            continue;
        }
        // Up to each member no other member descends from: nothing skipped in between.
        let lower: HashSet<String> = members
            .iter()
            .flat_map(|m| {
                let mut b = below(m);
                b.remove(m);
                b
            })
            .collect();
        for top in members.iter().filter(|m| !lower.contains(*m)) {
            let renders = below(top).difference(&above_start).cloned().collect();
            out.push(Range {
                start: start.clone(),
                end: Some(top.clone()),
                renders,
            });
        }
    }
    (out, unreachable)
}

/// One revision's part of Alembic's offline output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The revision (the id after `->` in its marker).
    pub revision: String,
    /// Its text: the marker line first, up to the next marker or the end.
    pub text: String,
}

/// Alembic's offline output cut at its `-- Running upgrade … -> REV` lines: the text before
/// the first one (the version table's creation, a `BEGIN`), then each revision's section.
pub fn sections(output: &str) -> (String, Vec<Section>) {
    let mut prefix = String::new();
    let mut sections: Vec<Section> = Vec::new();
    for line in output.split_inclusive('\n') {
        if let Some(revision) = marker(line) {
            sections.push(Section {
                revision,
                text: String::new(),
            });
        }
        match sections.last_mut() {
            Some(s) => s.text.push_str(line),
            None => prefix.push_str(line),
        }
    }
    (prefix, sections)
}

/// The revision a `-- Running upgrade FROM -> REV` line names.
fn marker(line: &str) -> Option<String> {
    let rest = line.trim_end().strip_prefix("-- Running upgrade ")?;
    let (_, to) = rest.rsplit_once(" -> ")?;
    let to = to.trim();
    (!to.is_empty() && !to.contains([' ', ','])).then(|| to.to_owned())
}

/// The 1-based lines of a revision file's `upgrade()` that reach for a live connection
/// (`get_bind(`, `.get_context().bind`), comments aside. Read from the text alone: a call made
/// through a helper defined elsewhere is found only when Alembic fails on it.
pub fn bind_calls(text: &str) -> Vec<usize> {
    let mut inside = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let top_level = !line.starts_with([' ', '\t']) && !line.trim().is_empty();
        if top_level && !line.trim_start().starts_with('#') {
            inside = line.starts_with("def upgrade(") || line.starts_with("async def upgrade(");
        }
        let code = line.split('#').next().unwrap_or_default();
        if inside && (code.contains("get_bind(") || code.contains("get_context().bind")) {
            lines.push(i + 1);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alembic::Revision;
    use std::path::PathBuf;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let revisions = edges
            .iter()
            .map(|(id, down)| Revision {
                id: (*id).to_owned(),
                down_revisions: down.iter().map(|d| (*d).to_owned()).collect(),
                branch_labels: Vec::new(),
                depends_on: Vec::new(),
                message: String::new(),
                path: PathBuf::from(format!("{id}.py")),
                line: 0,
            })
            .collect();
        Graph::build(revisions).expect("a graph")
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn args(ranges: &[Range]) -> Vec<String> {
        ranges.iter().map(Range::argument).collect()
    }

    #[test]
    fn one_range_when_nothing_is_skipped() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]);
        let (r, u) = ranges(&g, &ids(&["a", "b", "c"]), &HashSet::new(), None);
        assert_eq!(args(&r), ["base:heads"]);
        assert!(u.is_empty());
        let (r, _) = ranges(&g, &ids(&["c"]), &HashSet::new(), Some("b"));
        assert_eq!(args(&r), ["b:heads"]);
        assert_eq!(r[0].renders, HashSet::from(["c".to_owned()]));
    }

    #[test]
    fn a_skipped_revision_splits_the_range_around_it() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]);
        let skip = HashSet::from(["b".to_owned()]);
        let (r, u) = ranges(&g, &ids(&["a", "b", "c", "d"]), &skip, None);
        assert_eq!(args(&r), ["base:a", "b:heads"]);
        assert!(u.is_empty());
        for range in &r {
            assert!(range.renders.is_disjoint(&skip), "{range:?}");
        }
    }

    #[test]
    fn parallel_skipped_branches_leave_their_merge_unreachable() {
        // a → (b1, b2) → m: b1 and b2 both skipped, m descends from both.
        let g = graph(&[
            ("a", &[]),
            ("b1", &["a"]),
            ("b2", &["a"]),
            ("m", &["b1", "b2"]),
        ]);
        let skip = HashSet::from(["b1".to_owned(), "b2".to_owned()]);
        let (r, u) = ranges(&g, &ids(&["a", "m"]), &skip, None);
        assert_eq!(args(&r), ["base:a"]);
        assert_eq!(
            u,
            [Unreachable {
                revision: "m".into(),
                because: ids(&["b1", "b2"])
            }]
        );
        // One skipped branch: the other is rendered up to its own top.
        let skip = HashSet::from(["b1".to_owned()]);
        let (r, _) = ranges(&g, &ids(&["a", "b2", "m"]), &skip, None);
        assert_eq!(args(&r), ["base:b2", "b1:heads"]);
    }

    #[test]
    fn output_is_cut_at_the_markers() {
        let out = "BEGIN;\n\nCREATE TABLE alembic_version (x);\n\n-- Running upgrade  -> 0001\n\nCREATE TABLE t (a int);\n\n-- Running upgrade 0002, 0003 -> 0004\n\nDELETE FROM alembic_version;\n\nCOMMIT;\n\n";
        let (prefix, s) = sections(out);
        assert_eq!(prefix, "BEGIN;\n\nCREATE TABLE alembic_version (x);\n\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].revision, "0001");
        assert!(s[0].text.starts_with("-- Running upgrade  -> 0001\n"));
        assert!(s[0].text.ends_with("CREATE TABLE t (a int);\n\n"));
        assert_eq!(s[1].revision, "0004");
        assert!(s[1].text.ends_with("COMMIT;\n\n"));
        assert_eq!(marker("-- Running upgrade a -> b, c\n"), None);
    }

    #[test]
    fn bind_calls_are_found_in_upgrade_only() {
        let text = "from alembic import op\n\ndef upgrade():\n    conn = op.get_bind()\n    # op.get_bind() in a comment\n    x = op.get_context().bind\n\n\ndef downgrade():\n    op.get_bind()\n";
        assert_eq!(bind_calls(text), [4, 6]);
        assert!(bind_calls("def upgrade():\n    op.add_column('t', c)\n").is_empty());
    }
}
