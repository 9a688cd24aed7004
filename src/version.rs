//! Migration versions: an ordered sequence of integers, the one version type every layout
//! shares (shipgate's `42`, a timestamp `20240101120000`, Flyway's `1.2.10` or `1_2_10`,
//! diesel's `00000000000000`). It sits at the bottom of the import graph and imports nothing of
//! shipgate's; which versions a layout accepts (the native layout refuses 0) is the layout's
//! rule, not this type's.
//!
//! Versions compare part by part, numerically, and trailing zero parts do not count (`1.2` is
//! `1.2.0`, as Flyway's `MigrationVersion` compares): construction trims them, so equal versions
//! have one form. That form, the parts joined with `.` without leading zeros (`001` → `1`,
//! `1_2_0` → `1.2`), is what [`Display`](fmt::Display) prints and what history stores.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// A migration version: one or more unsigned integers, compared part by part.
///
/// Cloning is cheap: a one-part version (every native and timestamp version) is held inline,
/// a longer one shares its parts.
#[derive(Clone)]
pub struct Version(Repr);

/// Normalised: `Many` has at least two parts and its last part is not zero, so a version has
/// exactly one representation.
#[derive(Clone)]
enum Repr {
    One(u64),
    Many(Arc<[u64]>),
}

impl Version {
    /// Version 0 (diesel's initial setup migration; `down --to 0`: everything).
    pub const ZERO: Version = Version(Repr::One(0));

    /// The one-part version `n`.
    pub const fn from_int(n: u64) -> Version {
        Version(Repr::One(n))
    }

    /// The version with these parts, trailing zeros dropped (no parts: version 0).
    pub fn from_parts(parts: &[u64]) -> Version {
        let len = parts.iter().rposition(|&p| p != 0).map_or(0, |i| i + 1);
        match &parts[..len] {
            [] => Version::ZERO,
            [n] => Version::from_int(*n),
            more => Version(Repr::Many(Arc::from(more))),
        }
    }

    /// Reads `1`, `001`, `20240101120000`, `1.2.10` or `1_2_10`: digits, with parts separated
    /// by `.` or `_` (either, as Flyway allows), each fitting a `u64`. `Err` says why not.
    pub fn parse(text: &str) -> Result<Version, String> {
        if text.is_empty() {
            return Err("the version is empty".into());
        }
        if text.starts_with(['+', '-']) {
            return Err(format!("version `{text}` has a sign"));
        }
        let part = |digits: &str| -> Result<u64, String> {
            if digits.is_empty() {
                return Err(format!("version `{text}` has an empty part"));
            }
            if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
                return Err(match c {
                    c if c.is_whitespace() => format!("version `{text}` has white space"),
                    c => format!(
                        "version `{text}` has `{c}`: a version is numbers separated by `.` or `_`"
                    ),
                });
            }
            digits
                .parse()
                .map_err(|_| format!("version `{text}` has a part larger than {}", u64::MAX))
        };
        if !text.contains(['.', '_']) {
            return part(text).map(Version::from_int);
        }
        let parts = text
            .split(['.', '_'])
            .map(part)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Version::from_parts(&parts))
    }

    /// The parts, without trailing zeros (at least one).
    pub fn parts(&self) -> &[u64] {
        match &self.0 {
            Repr::One(n) => std::slice::from_ref(n),
            Repr::Many(parts) => parts,
        }
    }

    /// The version as an integer, when it is one part that fits an `i64` (every version of the
    /// native layout).
    pub fn as_int(&self) -> Option<i64> {
        match self.0 {
            Repr::One(n) => i64::try_from(n).ok(),
            Repr::Many(_) => None,
        }
    }

    /// Whether this is version 0.
    pub fn is_zero(&self) -> bool {
        matches!(self.0, Repr::One(0))
    }

    /// The version as a `tracing` field, recorded like its JSON: a number when it is an
    /// integer ([`as_int`](Version::as_int)), otherwise its text.
    pub fn field(&self) -> Box<dyn tracing::Value + '_> {
        match self.as_int() {
            Some(n) => Box::new(n),
            None => Box::new(tracing::field::display(self)),
        }
    }
}

impl From<u64> for Version {
    fn from(n: u64) -> Version {
        Version::from_int(n)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(text: &str) -> Result<Version, String> {
        Version::parse(text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl Ord for Version {
    /// Part by part, numerically; a version that runs out of parts first is the smaller
    /// (`1.2` < `1.2.1`), and with trailing zeros trimmed that is exactly Flyway's order.
    fn cmp(&self, other: &Version) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::One(a), Repr::One(b)) => a.cmp(b),
            _ => self.parts().cmp(other.parts()),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The parts joined with `.`, honouring width and alignment (`{:<16}`) like an integer.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::One(n) => fmt::Display::fmt(n, f),
            Repr::Many(parts) => {
                let text: Vec<String> = parts.iter().map(u64::to_string).collect();
                f.pad(&text.join("."))
            }
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A JSON number when the version is an integer that fits an `i64` (every version the
/// native layout reads, so `status --json`, `history --json`, the HTTP status and the webhook
/// payloads are unchanged for them), otherwise its text (`"1.2.10"`).
impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_int() {
            Some(n) => serializer.serialize_i64(n),
            None => serializer.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn parses_and_prints_the_canonical_form() {
        for (text, parts, shown) in [
            ("1", &[1][..], "1"),
            ("001", &[1], "1"),
            ("0", &[0], "0"),
            ("00000000000000", &[0], "0"),
            ("20240101120000", &[20240101120000], "20240101120000"),
            ("1.2.10", &[1, 2, 10], "1.2.10"),
            ("1_2_10", &[1, 2, 10], "1.2.10"),
            ("1_2.10", &[1, 2, 10], "1.2.10"),
            ("1.2.0", &[1, 2], "1.2"),
            ("1.0.0", &[1], "1"),
            ("0.0", &[0], "0"),
            ("0.1", &[0, 1], "0.1"),
            ("01.020", &[1, 20], "1.20"),
            ("18446744073709551615", &[u64::MAX], "18446744073709551615"),
        ] {
            let got = v(text);
            assert_eq!(got.parts(), parts, "{text}");
            assert_eq!(got.to_string(), shown, "{text}");
            assert_eq!(v(shown), got, "{text}: the printed form reads back");
        }
        assert_eq!(format!("{:<6}|{:>4}", v("1.2"), v("7")), "1.2   |   7");
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for (text, says) in [
            ("", "the version is empty"),
            ("1..2", "version `1..2` has an empty part"),
            (".1", "version `.1` has an empty part"),
            ("1.", "version `1.` has an empty part"),
            ("1__2", "version `1__2` has an empty part"),
            ("-1", "version `-1` has a sign"),
            ("+1", "version `+1` has a sign"),
            (" 1", "version ` 1` has white space"),
            ("1 ", "version `1 ` has white space"),
            (
                "1a",
                "version `1a` has `a`: a version is numbers separated by `.` or `_`",
            ),
            ("V1", "version `V1` has `V`"),
            ("1-2", "version `1-2` has `-`"),
            ("١", "version `١` has `١`"),
            (
                "18446744073709551616",
                "version `18446744073709551616` has a part larger than 18446744073709551615",
            ),
            ("1.99999999999999999999", "has a part larger than"),
        ] {
            let err = Version::parse(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn orders_part_by_part_numerically() {
        let ascending = [
            "0",
            "0.1",
            "1",
            "1.0.1",
            "1.1",
            "1.2",
            "1.2.1",
            "1.9",
            "1.10",
            "2",
            "10",
            "10.0.1",
            "20240101120000",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {}", pair[1], pair[0]);
        }
        let mut shuffled: Vec<Version> = ascending.iter().rev().map(|t| v(t)).collect();
        shuffled.sort();
        let sorted: Vec<String> = shuffled.iter().map(Version::to_string).collect();
        assert_eq!(sorted, ascending);
    }

    #[test]
    fn trailing_zeros_do_not_count() {
        use std::collections::{BTreeSet, HashSet};
        for (a, b) in [
            ("1.2", "1.2.0"),
            ("1", "1.0.0"),
            ("0", "0.0"),
            ("001", "1"),
            ("1_2", "1.2"),
        ] {
            assert_eq!(v(a), v(b), "{a} == {b}");
            assert_eq!(v(a).cmp(&v(b)), Ordering::Equal, "{a} cmp {b}");
            assert_eq!(BTreeSet::from([v(a), v(b)]).len(), 1, "{a}, {b}");
            assert_eq!(HashSet::from([v(a), v(b)]).len(), 1, "{a}, {b}");
        }
        assert_eq!(Version::from_parts(&[]), Version::ZERO);
        assert_eq!(Version::from_parts(&[7, 0]), Version::from_int(7));
        assert!(v("0.0").is_zero());
        assert!(!v("0.1").is_zero());
    }

    #[test]
    fn json_is_a_number_for_integers_and_text_otherwise() {
        for (text, json) in [
            ("1", "1"),
            ("0", "0"),
            ("20240101120000", "20240101120000"),
            ("9223372036854775807", "9223372036854775807"),
            ("9223372036854775808", "\"9223372036854775808\""),
            ("1.2.10", "\"1.2.10\""),
            ("1_2_0", "\"1.2\""),
        ] {
            let got = serde_json::to_string(&v(text)).expect("serialises");
            assert_eq!(got, json, "{text}");
        }
        assert_eq!(v("42").as_int(), Some(42));
        assert_eq!(v("1.2").as_int(), None);
        assert_eq!(v("9223372036854775808").as_int(), None);
    }
}
