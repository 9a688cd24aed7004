//! Python's `configparser.ConfigParser` as Alembic uses it on `alembic.ini`: sections, `key =
//! value` and `key: value` lines, full-line `#`/`;` comments (no inline comments), values
//! continued on deeper-indented lines, `[DEFAULT]`, lower-cased keys, strict duplicates, and
//! `BasicInterpolation` (`%(key)s` from the section or the defaults, `%%` for `%`, at most 10
//! levels deep). It owns only the file format; which keys Alembic reads is `config.rs`'s
//! business. Pure: it is handed the text.

use super::lexer::is_py_space;

/// configparser's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// A parsing error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong, in lower case.
    pub problem: String,
}

/// An option's raw value and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opt {
    key: String,
    value: String,
    line: usize,
}

/// A parsed INI file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Vec<Opt>,
    sections: Vec<(String, Vec<Opt>)>,
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

fn set(opts: &mut Vec<Opt>, opt: Opt) {
    match opts.iter_mut().find(|o| o.key == opt.key) {
        Some(old) => *old = opt,
        None => opts.push(opt),
    }
}

impl Ini {
    /// Reads `text` as `ConfigParser(defaults).read(file)` would; `defaults` are the
    /// constructor's (Alembic passes `here`), which a `[DEFAULT]` section may override.
    pub fn parse(text: &str, defaults: &[(&str, &str)]) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        for (key, value) in defaults {
            set(
                &mut ini.defaults,
                Opt {
                    key: key.to_lowercase(),
                    value: (*value).to_owned(),
                    line: 0,
                },
            );
        }
        // Which section receives options: None before the first header, Some(None) for
        // DEFAULT, Some(Some(i)) for sections[i].
        let mut cursect: Option<Option<usize>> = None;
        let mut added_sections: Vec<String> = Vec::new();
        let mut added_options: Vec<(Option<usize>, String)> = Vec::new();
        // The option being continued, and its lines so far.
        let mut current: Option<(Option<usize>, String, usize, Vec<String>)> = None;
        let mut indent_level = 0usize;
        let mut first_error: Option<IniError> = None;

        let finish =
            |ini: &mut Ini, current: &mut Option<(Option<usize>, String, usize, Vec<String>)>| {
                if let Some((sect, key, line, lines)) = current.take() {
                    let value = lines.join("\n");
                    let value = value.trim_end_matches(is_py_space).to_owned();
                    let opt = Opt { key, value, line };
                    match sect {
                        None => set(&mut ini.defaults, opt),
                        Some(i) => set(&mut ini.sections[i].1, opt),
                    }
                }
            };

        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for (index, raw) in text.split('\n').enumerate() {
            let lineno = index + 1;
            let stripped = py_strip(raw);
            let comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if comment { "" } else { stripped };
            if value.is_empty() {
                // configparser keeps blank lines inside a value (empty_lines_in_values), but
                // not comment lines.
                if !comment {
                    if let Some((_, _, _, lines)) = current.as_mut() {
                        lines.push(String::new());
                    }
                }
                continue;
            }
            let cur_indent = raw.chars().take_while(|&c| is_py_space(c)).count();
            if cursect.is_some() && current.is_some() && cur_indent > indent_level {
                if let Some((_, _, _, lines)) = current.as_mut() {
                    lines.push(value.to_owned());
                }
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                finish(&mut ini, &mut current);
                if let Some(i) = ini.sections.iter().position(|(name, _)| name == header) {
                    if added_sections.iter().any(|s| s == header) {
                        return Err(IniError {
                            line: lineno,
                            problem: format!("section [{header}] appears twice"),
                        });
                    }
                    added_sections.push(header.to_owned());
                    cursect = Some(Some(i));
                } else if header == "DEFAULT" {
                    cursect = Some(None);
                } else {
                    ini.sections.push((header.to_owned(), Vec::new()));
                    added_sections.push(header.to_owned());
                    cursect = Some(Some(ini.sections.len() - 1));
                }
                continue;
            }
            let Some(sect) = cursect else {
                return Err(IniError {
                    line: lineno,
                    problem: "option before the first [section] header".into(),
                });
            };
            finish(&mut ini, &mut current);
            // `(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$`: the first `=` or `:`.
            let Some(at) = value.find(['=', ':']) else {
                first_error.get_or_insert(IniError {
                    line: lineno,
                    problem: "a line that is neither a [section], an option nor a comment".into(),
                });
                continue;
            };
            let key = value[..at].trim_end_matches(is_py_space);
            if key.is_empty() {
                first_error.get_or_insert(IniError {
                    line: lineno,
                    problem: "an option without a name".into(),
                });
                continue;
            }
            let key = key.to_lowercase();
            if added_options.iter().any(|(s, k)| *s == sect && *k == key) {
                return Err(IniError {
                    line: lineno,
                    problem: format!("option `{key}` appears twice in its section"),
                });
            }
            added_options.push((sect, key.clone()));
            let val = py_strip(&value[at + 1..]).to_owned();
            current = Some((sect, key, lineno, vec![val]));
        }
        finish(&mut ini, &mut current);
        match first_error {
            Some(e) => Err(e),
            None => Ok(ini),
        }
    }

    /// The raw option from `section` or the defaults (`has_option`), with its line (0: a
    /// constructor default). `None` when the section does not exist.
    fn raw(&self, section: &str, key: &str) -> Option<&Opt> {
        let (_, opts) = self.sections.iter().find(|(name, _)| name == section)?;
        let key = key.to_lowercase();
        opts.iter()
            .chain(self.defaults.iter())
            .find(|o| o.key == key)
    }

    /// `get(section, key)` with interpolation: `Ok(None)` when the section or option is
    /// absent; the line is the option's (0: a default).
    pub fn get(&self, section: &str, key: &str) -> Result<Option<(String, usize)>, IniError> {
        let Some(opt) = self.raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(section, key, &opt.value, 1, &mut out)
            .map_err(|problem| IniError {
                line: opt.line,
                problem,
            })?;
        Ok(Some((out, opt.line)))
    }

    fn interpolate(
        &self,
        section: &str,
        option: &str,
        rest: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "`{option}`: interpolation is more than {MAX_DEPTH} levels deep"
            ));
        }
        expand(rest, out, |var, out| {
            let var = var.to_lowercase();
            let Some(v) = self.raw(section, &var) else {
                return Err(format!(
                    "%({var})s names no option of [{section}] or [DEFAULT]"
                ));
            };
            if v.value.contains('%') {
                self.interpolate(section, option, &v.value, depth + 1, out)
            } else {
                out.push_str(&v.value);
                Ok(())
            }
        })
        .map_err(|e| {
            if e.starts_with('`') {
                e
            } else {
                format!("`{option}`: {e}")
            }
        })
    }
}

/// Python's `%`-formatting with a mapping, as configparser's interpolation and Alembic's TOML
/// options use it: `%%` is `%`, `%(name)s` is what `var` appends for `name`, any other `%` is
/// an error.
pub fn expand(
    mut rest: &str,
    out: &mut String,
    mut var: impl FnMut(&str, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(after) = rest.strip_prefix("%%") {
            out.push('%');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("%(") {
            let Some(close) = after
                .find(')')
                .filter(|&c| c > 0 && after[c + 1..].starts_with('s'))
            else {
                return Err(format!(
                    "bad interpolation variable reference {rest:?} (write %% for a literal %)"
                ));
            };
            var(&after[..close], out)?;
            rest = &after[close + 2..];
        } else {
            return Err(format!(
                "'%' must be followed by '%' or '(', found {rest:?}"
            ));
        }
    }
    out.push_str(rest);
    Ok(())
}

/// configparser's `\[(?P<header>.+)\]` matched at the start: up to the last `]`.
fn section_header(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('[')?;
    let close = inner.rfind(']')?;
    (close > 0).then(|| &inner[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str, key: &str) -> Result<Option<String>, IniError> {
        Ini::parse(text, &[("here", "/proj")])?
            .get("alembic", key)
            .map(|v| v.map(|(v, _)| v))
    }

    #[test]
    fn values_read_as_configparser_reads_them() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "[alembic]\nscript_location = alembic\n",
                "script_location",
                Some("alembic"),
            ),
            (
                "[alembic]\nscript_location: alembic\n",
                "script_location",
                Some("alembic"),
            ),
            (
                "[alembic]\nScript_Location=  a b  \n",
                "script_location",
                Some("a b"),
            ),
            (
                "[alembic]\nscript_location = %(here)s/alembic\n",
                "script_location",
                Some("/proj/alembic"),
            ),
            (
                "[alembic]\nfile_template = %%(rev)s_%%(slug)s\n",
                "file_template",
                Some("%(rev)s_%(slug)s"),
            ),
            (
                "[alembic]\nx = a # not a comment\n",
                "x",
                Some("a # not a comment"),
            ),
            ("[alembic]\n# x = commented\nx = b\n", "x", Some("b")),
            ("[alembic]\n; x = commented\n", "x", None),
            (
                "[alembic]\nx = a\n  b\n\n  c\n\ny = 1\n",
                "x",
                Some("a\nb\n\nc"),
            ),
            ("[alembic]\nx = a\n  # comment\n  b\n", "x", Some("a\nb")),
            ("[alembic]\nx =\n    a\n    b\n", "x", Some("\na\nb")),
            ("[alembic]\nx = a\ny = b\n", "y", Some("b")),
            (
                "[DEFAULT]\nbase = /b\n[alembic]\nx = %(base)s/v\n",
                "x",
                Some("/b/v"),
            ),
            (
                "[DEFAULT]\nhere = /other\n[alembic]\nx = %(here)s\n",
                "x",
                Some("/other"),
            ),
            (
                "[alembic]\nsub = s\nx = %(SUB)s/%(sub)s\n",
                "x",
                Some("s/s"),
            ),
            (
                "[alembic]\na = %(b)s\nb = %(here)s/b\n",
                "a",
                Some("/proj/b"),
            ),
            ("[alembic]\nx = a:b = c\n", "x", Some("a:b = c")),
            ("[alembic]\nx: a = b\n", "x", Some("a = b")),
            ("[alembic]\nx = 1\r\ny = 2\r\n", "y", Some("2")),
            ("[other]\nx = 1\n", "x", None),
            ("[alembic] trailing\nx = 1\n", "x", Some("1")),
            (
                "[loggers]\nkeys = root\n[alembic]\nkeys = mine\n",
                "keys",
                Some("mine"),
            ),
        ];
        for (text, key, want) in cases {
            let got = get(text, key).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!(got.as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn errors_as_configparser_raises_them() {
        let cases: &[(&str, usize, &str)] = &[
            ("x = 1\n[alembic]\n", 1, "before the first [section]"),
            ("[alembic]\nx = 1\nx = 2\n", 3, "appears twice"),
            ("[alembic]\n[alembic]\n", 2, "appears twice"),
            ("[alembic]\njust words\n", 2, "neither"),
            ("[alembic]\n= value\n", 2, "without a name"),
            ("[alembic]\nx = 100%\n", 2, "'%' must be followed"),
            ("[alembic]\nx = %(nope)s\n", 2, "names no option"),
            ("[alembic]\nx = %(x)s\n", 2, "levels deep"),
            ("[alembic]\nx = %(here)d\n", 2, "bad interpolation"),
        ];
        for (text, line, words) in cases {
            let e = get(text, "x").expect_err(text);
            assert_eq!(e.line, *line, "{text:?}: {e:?}");
            assert!(e.problem.contains(words), "{text:?}: {e:?}");
        }
    }
}
