//! The revision graph, built and walked as Alembic's `RevisionMap` (`alembic/script/revision.py`)
//! does: `down_revision` edges (several for a merge) and `depends_on` edges (a revision id or a
//! branch label, standing for the revision that declares it); heads as `alembic heads` prints
//! them (nobody's `down_revision`) and the effective heads `upgrade heads` targets (nobody's
//! `down_revision` or dependency, what `alembic_version` holds afterwards); the history order
//! and the upgrade order, by a port of `RevisionMap._topological_sort`, which breaks ties by
//! load order. Given `alembic_version`'s rows, [`Graph::state`] says what is applied, what is
//! pending and in which order `alembic upgrade heads` would run it, and which rows Alembic
//! itself would refuse.
//!
//! Where Alembic only warns (a revision id used twice) or fails with a Python traceback (an
//! unknown `down_revision`, a cycle), building is an error naming the files. Pure: no files,
//! no database.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::revision::Revision;

/// Characters Alembic refuses in a revision id (`_revision_illegal_chars`).
const ILLEGAL: [char; 4] = ['@', '-', '+', ':'];

/// Why the revisions do not form a graph Alembic can walk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two files declare the same revision id.
    #[error("{}: revision {id} is also declared by {}", file.display(), other.display())]
    Duplicate {
        /// The id.
        id: String,
        /// The later file.
        file: PathBuf,
        /// The file read first.
        other: PathBuf,
    },
    /// The id holds a character Alembic refuses.
    #[error("{}: revision id {id:?} holds {chars:?}, which Alembic does not allow in an id", file.display())]
    IllegalId {
        /// The id.
        id: String,
        /// The file.
        file: PathBuf,
        /// The refused characters found.
        chars: String,
    },
    /// A revision names itself as its own parent or dependency.
    #[error("{}: revision {id} names itself in {field}", file.display())]
    SelfLoop {
        /// The id.
        id: String,
        /// The file.
        file: PathBuf,
        /// `down_revision` or `depends_on`.
        field: &'static str,
    },
    /// `down_revision` names no revision.
    #[error("{}: revision {id} has down_revision {missing:?}, which no file declares{hint}", file.display())]
    UnknownDown {
        /// The revision.
        id: String,
        /// Its file.
        file: PathBuf,
        /// The id it names.
        missing: String,
        /// More about the name, when it is a branch label.
        hint: String,
    },
    /// `depends_on` names neither a revision nor a branch label.
    #[error("{}: revision {id} depends_on {missing:?}, which is neither a revision id nor a branch label", file.display())]
    UnknownDependency {
        /// The revision.
        id: String,
        /// Its file.
        file: PathBuf,
        /// The name it depends on.
        missing: String,
    },
    /// A branch label is used twice, or is another revision's id.
    #[error("{}: branch label {label:?} of revision {id} is already used by revision {other} ({})", file.display(), other_file.display())]
    LabelTaken {
        /// The label.
        label: String,
        /// The revision declaring it again.
        id: String,
        /// Its file.
        file: PathBuf,
        /// The revision that holds the name.
        other: String,
        /// That revision's file.
        other_file: PathBuf,
    },
    /// Revisions that descend from themselves.
    #[error("{kind} among revisions {}", members.iter().map(|(id, f)| format!("{id} ({})", f.display())).collect::<Vec<_>>().join(", "))]
    Cycle {
        /// `cycle` (through down_revision) or `dependency cycle` (through depends_on too).
        kind: &'static str,
        /// Each revision on the cycle and its file.
        members: Vec<(String, PathBuf)>,
    },
}

/// The revision graph of one project.
#[derive(Debug, Clone)]
pub struct Graph {
    /// In load order; an index is a position here.
    revisions: Vec<Revision>,
    index: HashMap<String, usize>,
    /// `down_revision` as indices (deduplicated).
    down: Vec<Vec<usize>>,
    /// `depends_on` resolved to revisions (deduplicated).
    deps: Vec<Vec<usize>>,
    /// Alembic's `_normalized_resolved_dependencies`: dependencies less those of ancestors.
    norm_deps: Vec<Vec<usize>>,
    heads: Vec<usize>,
    effective_heads: Vec<usize>,
    bases: Vec<usize>,
}

/// One revision `alembic upgrade heads` would run, for the runner to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The revision id.
    pub revision: String,
    /// The first paragraph of its docstring.
    pub message: String,
    /// Its file.
    pub file: PathBuf,
    /// Its `down_revision`s (several for a merge, none for a base).
    pub down_revisions: Vec<String>,
    /// Its `depends_on` as written.
    pub depends_on: Vec<String>,
}

/// The database's state against the graph, from `alembic_version`'s rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Revisions the rows cover (the rows and everything they descend from through
    /// down_revision and depends_on), in upgrade order.
    pub applied: Vec<String>,
    /// Everything else, in the order `alembic upgrade heads` would run it.
    pub pending: Vec<Step>,
    /// Rows naming no revision of this build: the database is ahead of it (or another
    /// project's); `alembic upgrade` fails with "Can't locate revision".
    pub unknown: Vec<String>,
    /// Rows that are ancestors of other rows: `alembic upgrade` fails with "Requested revision
    /// … overlaps with other requested revisions".
    pub overlapping: Vec<String>,
    /// Heads as `alembic heads` lists them; more than one means unmerged branches (`upgrade
    /// heads` still applies them all; `upgrade head` fails).
    pub heads: Vec<String>,
    /// What `alembic_version` holds once `upgrade heads` is done (heads less those another
    /// revision depends on).
    pub effective_heads: Vec<String>,
}

impl State {
    /// Nothing to do, and nothing Alembic would refuse: the deploy may skip Alembic.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.overlapping.is_empty()
    }
}

fn dedupe(items: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

impl Graph {
    /// Builds the graph from revisions in load order, or every error found.
    pub fn build(revisions: Vec<Revision>) -> Result<Graph, Vec<GraphError>> {
        let mut errors = Vec::new();
        let mut kept: Vec<Revision> = Vec::with_capacity(revisions.len());
        let mut index: HashMap<String, usize> = HashMap::new();
        for rev in revisions {
            let chars: String = rev.id.chars().filter(|c| ILLEGAL.contains(c)).collect();
            if !chars.is_empty() {
                errors.push(GraphError::IllegalId {
                    id: rev.id.clone(),
                    file: rev.path.clone(),
                    chars,
                });
            }
            for (field, names) in [
                ("down_revision", &rev.down_revisions),
                ("depends_on", &rev.depends_on),
            ] {
                if names.contains(&rev.id) {
                    errors.push(GraphError::SelfLoop {
                        id: rev.id.clone(),
                        file: rev.path.clone(),
                        field,
                    });
                }
            }
            if let Some(&other) = index.get(&rev.id) {
                errors.push(GraphError::Duplicate {
                    id: rev.id.clone(),
                    file: rev.path.clone(),
                    other: kept[other].path.clone(),
                });
                continue;
            }
            index.insert(rev.id.clone(), kept.len());
            kept.push(rev);
        }

        // Branch labels share the namespace of revision ids (`_map_branch_labels`).
        let mut labels: HashMap<&str, usize> = HashMap::new();
        for (i, rev) in kept.iter().enumerate() {
            for label in &rev.branch_labels {
                let holder = index
                    .get(label)
                    .copied()
                    .or_else(|| labels.get(label.as_str()).copied());
                match holder {
                    Some(other) => {
                        errors.push(GraphError::LabelTaken {
                            label: label.clone(),
                            id: rev.id.clone(),
                            file: rev.path.clone(),
                            other: kept[other].id.clone(),
                            other_file: kept[other].path.clone(),
                        });
                    }
                    None => {
                        labels.insert(label, i);
                    }
                }
            }
        }

        let mut down = Vec::with_capacity(kept.len());
        let mut deps = Vec::with_capacity(kept.len());
        for rev in &kept {
            let mut ds = Vec::new();
            for name in &rev.down_revisions {
                match index.get(name) {
                    Some(&d) => ds.push(d),
                    None if *name == rev.id => {}
                    None => errors.push(GraphError::UnknownDown {
                        id: rev.id.clone(),
                        file: rev.path.clone(),
                        missing: name.clone(),
                        hint: match labels.get(name.as_str()) {
                            Some(&l) => format!(
                                " (it is the branch label of {}; down_revision takes revision ids)",
                                kept[l].id
                            ),
                            None => String::new(),
                        },
                    }),
                }
            }
            down.push(dedupe(ds));
            let mut ps = Vec::new();
            for name in &rev.depends_on {
                match index.get(name).or_else(|| labels.get(name.as_str())) {
                    Some(&d) if *name != rev.id => ps.push(d),
                    Some(_) => {}
                    None => errors.push(GraphError::UnknownDependency {
                        id: rev.id.clone(),
                        file: rev.path.clone(),
                        missing: name.clone(),
                    }),
                }
            }
            deps.push(dedupe(ps));
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        let n = kept.len();
        let mut graph = Graph {
            revisions: kept,
            index,
            down,
            deps,
            norm_deps: Vec::new(),
            heads: Vec::new(),
            effective_heads: Vec::new(),
            bases: Vec::new(),
        };
        if let Some(cycle) = graph.cycle(false).or_else(|| graph.cycle(true)) {
            return Err(vec![cycle]);
        }
        let mut is_down = vec![false; n];
        let mut is_any_down = vec![false; n];
        for i in 0..n {
            for &d in &graph.down[i] {
                is_down[d] = true;
                is_any_down[d] = true;
            }
            for &d in &graph.deps[i] {
                is_any_down[d] = true;
            }
        }
        graph.heads = (0..n).filter(|&i| !is_down[i]).collect();
        graph.effective_heads = (0..n).filter(|&i| !is_any_down[i]).collect();
        graph.bases = (0..n).filter(|&i| graph.down[i].is_empty()).collect();
        graph.norm_deps = (0..n).map(|i| graph.normalized_deps(i)).collect();
        Ok(graph)
    }

    /// The members of a cycle through `down_revision` (and `depends_on` with `with_deps`).
    fn cycle(&self, with_deps: bool) -> Option<GraphError> {
        let n = self.revisions.len();
        let edges = |i: usize| -> Vec<usize> {
            let mut e = self.down[i].clone();
            if with_deps {
                e.extend(&self.deps[i]);
            }
            e
        };
        // Kahn's algorithm from the bases up; what is left is on a cycle or above one.
        let mut pending: Vec<usize> = (0..n).map(|i| edges(i).len()).collect();
        let mut up: Vec<Vec<usize>> = vec![Vec::new(); n];
        for i in 0..n {
            for d in edges(i) {
                up[d].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
        let mut done = vec![false; n];
        while let Some(i) = ready.pop() {
            done[i] = true;
            for &u in &up[i] {
                pending[u] -= 1;
                if pending[u] == 0 {
                    ready.push(u);
                }
            }
        }
        // Of those left, keep the ones that reach themselves.
        let left: Vec<usize> = (0..n).filter(|&i| !done[i]).collect();
        let members: Vec<(String, PathBuf)> = left
            .iter()
            .filter(|&&start| {
                let mut seen = HashSet::new();
                let mut todo = edges(start);
                while let Some(i) = todo.pop() {
                    if i == start {
                        return true;
                    }
                    if !done[i] && seen.insert(i) {
                        todo.extend(edges(i));
                    }
                }
                false
            })
            .map(|&i| (self.revisions[i].id.clone(), self.revisions[i].path.clone()))
            .collect();
        (!members.is_empty()).then_some(GraphError::Cycle {
            kind: if with_deps {
                "dependency cycle"
            } else {
                "cycle"
            },
            members,
        })
    }

    /// `_normalize_depends_on`: a revision's dependencies less those that a revision it
    /// descends from (through down_revision) already depends on.
    fn normalized_deps(&self, i: usize) -> Vec<usize> {
        if self.deps[i].is_empty() {
            return Vec::new();
        }
        let mut drop = HashSet::new();
        let mut seen = HashSet::new();
        let mut todo = self.down[i].clone();
        while let Some(a) = todo.pop() {
            if seen.insert(a) {
                drop.extend(self.deps[a].iter().copied());
                todo.extend(&self.down[a]);
            }
        }
        self.deps[i]
            .iter()
            .copied()
            .filter(|d| !drop.contains(d))
            .collect()
    }

    /// `_normalized_down_revisions`: down_revision, then the normalized dependencies.
    fn normalized_down(&self, i: usize) -> Vec<usize> {
        dedupe(self.down[i].iter().chain(&self.norm_deps[i]).copied())
    }

    /// The revisions, in load order.
    pub fn revisions(&self) -> &[Revision] {
        &self.revisions
    }

    /// The revision with this exact id.
    pub fn get(&self, id: &str) -> Option<&Revision> {
        self.index.get(id).map(|&i| &self.revisions[i])
    }

    fn ids(&self, set: &[usize]) -> Vec<String> {
        set.iter().map(|&i| self.revisions[i].id.clone()).collect()
    }

    /// `alembic heads`: revisions no `down_revision` names, in load order.
    pub fn heads(&self) -> Vec<String> {
        self.ids(&self.heads)
    }

    /// `alembic heads --resolve-dependencies`: heads no revision depends on either; what
    /// `upgrade heads` targets and leaves in `alembic_version`.
    pub fn effective_heads(&self) -> Vec<String> {
        self.ids(&self.effective_heads)
    }

    /// Revisions without a `down_revision`, in load order.
    pub fn bases(&self) -> Vec<String> {
        self.ids(&self.bases)
    }

    /// The given revisions and everything they descend from (down_revision and depends_on);
    /// ids not in the graph are ignored.
    pub fn ancestors(&self, ids: &[String]) -> HashSet<String> {
        let start: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.index.get(id).copied())
            .collect();
        self.closure(&start)
            .into_iter()
            .map(|i| self.revisions[i].id.clone())
            .collect()
    }

    fn closure(&self, start: &[usize]) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut todo = start.to_vec();
        while let Some(i) = todo.pop() {
            if seen.insert(i) {
                todo.extend(&self.down[i]);
                todo.extend(&self.deps[i]);
            }
        }
        seen
    }

    /// `alembic history`'s order: newest first, every revision once.
    pub fn history(&self) -> Vec<&Revision> {
        let all: HashSet<usize> = (0..self.revisions.len()).collect();
        self.topological(all, &self.effective_heads)
            .into_iter()
            .map(|i| &self.revisions[i])
            .collect()
    }

    /// What the rows of `alembic_version` (full revision ids) say about the database.
    pub fn state(&self, rows: &[String]) -> State {
        let mut unknown = Vec::new();
        let mut known = Vec::new();
        for row in rows {
            match self.index.get(row) {
                Some(&i) => known.push(i),
                None => unknown.push(row.clone()),
            }
        }
        let mut overlapping = Vec::new();
        for &r in &known {
            let others: Vec<usize> = known.iter().copied().filter(|&o| o != r).collect();
            if self.closure(&others).contains(&r) {
                overlapping.push(self.revisions[r].id.clone());
            }
        }
        let applied_set = self.closure(&known);
        let pending_set: HashSet<usize> = (0..self.revisions.len())
            .filter(|i| !applied_set.contains(i))
            .collect();
        let mut order = self.topological(pending_set, &self.effective_heads);
        order.reverse();
        // Applied revisions in the order a fresh database would have run them.
        let all: HashSet<usize> = (0..self.revisions.len()).collect();
        let mut applied_order = self.topological(all, &self.effective_heads);
        applied_order.reverse();
        applied_order.retain(|i| applied_set.contains(i));
        State {
            applied: self.ids(&applied_order),
            pending: order
                .into_iter()
                .map(|i| {
                    let r = &self.revisions[i];
                    Step {
                        revision: r.id.clone(),
                        message: r.message.clone(),
                        file: r.path.clone(),
                        down_revisions: r.down_revisions.clone(),
                        depends_on: r.depends_on.clone(),
                    }
                })
                .collect(),
            unknown,
            overlapping,
            heads: self.heads(),
            effective_heads: self.effective_heads(),
        }
    }

    /// A port of `RevisionMap._topological_sort(revisions, heads)`: `todo` newest first,
    /// walking down from the targets in `todo`, one branch at a time, switching to another
    /// branch when the candidate is an ancestor of that branch's head. `upgrade` runs the
    /// reverse.
    fn topological(&self, mut todo: HashSet<usize>, targets: &[usize]) -> Vec<usize> {
        let ancestors = |i: usize| self.closure(&[i]);
        // Indices are load order, as `inserted_order.index` sorts.
        let mut current: Vec<usize> = targets
            .iter()
            .copied()
            .filter(|t| todo.contains(t))
            .collect();
        current.sort_unstable();
        current.dedup();
        let mut ancestors_by: Vec<HashSet<usize>> = current.iter().map(|&h| ancestors(h)).collect();
        let mut output = Vec::with_capacity(todo.len());
        let mut idx = 0;
        while !current.is_empty() {
            let candidate = current[idx];
            if let Some(other) = ancestors_by
                .iter()
                .enumerate()
                .position(|(j, a)| j != idx && a.contains(&candidate))
            {
                // Another head descends from the candidate: walk that one first.
                idx = other;
                continue;
            }
            if todo.remove(&candidate) {
                output.push(candidate);
            }
            let add: Vec<usize> = self
                .normalized_down(candidate)
                .into_iter()
                .filter(|r| todo.contains(r) && !current.contains(r))
                .collect();
            match add.split_first() {
                None => {
                    current.remove(idx);
                    ancestors_by.remove(idx);
                    idx = idx.saturating_sub(1);
                }
                Some((&first, rest)) => {
                    current[idx] = first;
                    if self.norm_deps[candidate].is_empty() && self.down[candidate].len() == 1 {
                        ancestors_by[idx].remove(&candidate);
                    } else {
                        current.extend_from_slice(rest);
                        ancestors_by[idx] = ancestors(first);
                        ancestors_by.extend(rest.iter().map(|&r| ancestors(r)));
                    }
                }
            }
        }
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `id:down1,down2:dep1,dep2:label` per revision, in load order.
    fn graph(spec: &[&str]) -> Result<Graph, Vec<GraphError>> {
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Graph::build(
            spec.iter()
                .map(|s| {
                    let mut parts = s.split(':');
                    let id = parts.next().unwrap_or_default().to_owned();
                    Revision {
                        down_revisions: list(parts.next().unwrap_or_default()),
                        depends_on: list(parts.next().unwrap_or_default()),
                        branch_labels: list(parts.next().unwrap_or_default()),
                        message: format!("msg {id}"),
                        path: PathBuf::from(format!("versions/{id}.py")),
                        line: 1,
                        id,
                    }
                })
                .collect(),
        )
    }

    fn ok(spec: &[&str]) -> Graph {
        graph(spec).unwrap_or_else(|e| panic!("{spec:?}: {e:?}"))
    }

    fn history(g: &Graph) -> Vec<&str> {
        g.history().iter().map(|r| r.id.as_str()).collect()
    }

    fn pending(g: &Graph, rows: &[&str]) -> Vec<String> {
        let rows: Vec<String> = rows.iter().map(|s| (*s).to_owned()).collect();
        g.state(&rows)
            .pending
            .into_iter()
            .map(|s| s.revision)
            .collect()
    }

    #[test]
    fn a_chain_upgrades_from_where_the_rows_are() {
        let g = ok(&["c:b", "a", "b:a"]);
        assert_eq!(g.heads(), ["c"]);
        assert_eq!(g.bases(), ["a"]);
        assert_eq!(history(&g), ["c", "b", "a"]);
        assert_eq!(pending(&g, &[]), ["a", "b", "c"]);
        assert_eq!(pending(&g, &["a"]), ["b", "c"]);
        assert!(g.state(&["c".to_owned()]).is_current());
    }

    /// The order `alembic history` printed for the same graph (alembic 1.18, see
    /// tests/it/alembic.rs for the live comparison).
    #[test]
    fn branches_and_dependencies_follow_alembics_order() {
        // a ← b; c ← d (depends on a) ← e: the experiment in the module's history.
        let g = ok(&["a", "b:a", "c", "d:c:a", "e:d"]);
        assert_eq!(g.heads(), ["b", "e"]);
        assert_eq!(history(&g), ["b", "e", "d", "c", "a"]);
        assert_eq!(pending(&g, &[]), ["a", "c", "d", "e", "b"]);
        assert_eq!(pending(&g, &["a"]), ["c", "d", "e", "b"]);
        // A merge point.
        let g = ok(&["a", "b:a", "c:a", "m:b,c"]);
        assert_eq!(g.heads(), ["m"]);
        assert_eq!(pending(&g, &["b"]), ["c", "m"]);
        assert_eq!(history(&g), ["m", "b", "c", "a"]);
    }

    #[test]
    fn a_dependency_on_a_head_makes_it_no_effective_head() {
        let g = ok(&["a", "x", "b:a:x"]);
        assert_eq!(g.heads(), ["x", "b"]);
        assert_eq!(g.effective_heads(), ["b"]);
        let s = g.state(&["b".to_owned()]);
        assert!(s.is_current(), "{s:?}");
        assert_eq!(s.applied, ["x", "a", "b"]);
    }

    #[test]
    fn a_dependency_may_name_a_branch_label() {
        let g = ok(&["a:::lib", "b:a", "c", "d:c:lib"]);
        let s = g.state(&["b".to_owned(), "d".to_owned()]);
        assert!(s.is_current(), "{s:?}");
        assert_eq!(g.ancestors(&["d".to_owned()]).len(), 3);
    }

    #[test]
    fn rows_alembic_would_refuse_are_reported() {
        let g = ok(&["a", "b:a"]);
        let s = g.state(&["zz".to_owned(), "a".to_owned()]);
        assert_eq!(s.unknown, ["zz"]);
        assert_eq!(pending(&g, &["zz", "a"]), ["b"]);
        assert!(!s.is_current());
        let s = g.state(&["a".to_owned(), "b".to_owned()]);
        assert_eq!(s.overlapping, ["a"]);
        assert!(s.pending.is_empty());
        assert!(!s.is_current());
    }

    #[test]
    fn broken_graphs_are_errors_naming_files() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["a", "a"],
                "versions/a.py: revision a is also declared by versions/a.py",
            ),
            (
                &["a", "b:x"],
                "revision b has down_revision \"x\", which no file declares",
            ),
            (&["a:::lib", "b:lib"], "it is the branch label of a"),
            (&["a", "b::x"], "depends_on \"x\", which is neither"),
            (&["a:a"], "names itself in down_revision"),
            (&["a::a"], "names itself in depends_on"),
            (&["a-b"], "holds \"-\""),
            (
                &["a:::lib", "b:a::lib"],
                "branch label \"lib\" of revision b is already used by revision a",
            ),
            (
                &["a:::b", "b:a"],
                "branch label \"b\" of revision a is already used by revision b",
            ),
            (
                &["a", "b:a,c", "c:b", "d:c"],
                "cycle among revisions b (versions/b.py), c (versions/c.py)",
            ),
            (
                &["a", "b:a:c", "c:b"],
                "dependency cycle among revisions b (versions/b.py), c (versions/c.py)",
            ),
        ];
        for (spec, words) in cases {
            let errors = graph(spec).expect_err(words);
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert!(text.iter().any(|t| t.contains(words)), "{spec:?}: {text:?}");
        }
    }

    #[test]
    fn a_long_chain_is_linear_work() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("r{i}")).collect();
        let spec: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                if i == 0 {
                    id.clone()
                } else {
                    format!("{id}:{}", ids[i - 1])
                }
            })
            .collect();
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        let g = ok(&spec);
        let s = g.state(&["r10000".to_owned()]);
        assert_eq!(s.pending.len(), 9_999);
        assert_eq!(s.pending[0].revision, "r10001");
    }
}
