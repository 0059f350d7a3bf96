//! Which secrets `run --only` and `export --only` mean: exact names, globs (`prod/*`,
//! `*_PASSWORD`) and prefixes (`prod/`).

use std::collections::BTreeSet;

use sigil_core::{Error, SecretName};

use crate::UsageError;

/// A parsed `--only` list. Empty: every secret.
#[derive(Debug, Default)]
pub struct Selection {
    exact: BTreeSet<SecretName>,
    patterns: Vec<String>,
}

impl Selection {
    /// Parses `--only A,prod/*,dev/`: a name with `*` or `?` is a glob (`*` matches any run of
    /// characters, `/` included; `?` one character), one ending in `/` a prefix, any other an
    /// exact name.
    ///
    /// # Errors
    /// An invalid name, or a pattern that no name could match.
    pub fn parse(only: &[String]) -> Result<Self, anyhow::Error> {
        let mut s = Selection::default();
        for item in only.iter().filter(|s| !s.is_empty()) {
            if item.contains(['*', '?']) || item.ends_with('/') {
                let pattern = if item.ends_with('/') {
                    format!("{item}*")
                } else {
                    item.clone()
                };
                let literal: String = pattern
                    .chars()
                    .filter(|c| !matches!(c, '*' | '?'))
                    .collect();
                if let Some(bad) = literal
                    .chars()
                    .find(|c| !c.is_ascii_alphanumeric() && !matches!(c, '_' | '.' | '-' | '/'))
                {
                    return Err(UsageError(format!(
                        "--only {item:?}: {bad:?} cannot be in a secret's name; patterns use * and ?"
                    ))
                    .into());
                }
                s.patterns.push(pattern);
            } else {
                s.exact.insert(SecretName::parse(item)?);
            }
        }
        Ok(s)
    }

    /// Whether every secret is meant.
    pub fn is_all(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }

    /// The names given exactly (not through a pattern).
    pub fn exact(&self) -> &BTreeSet<SecretName> {
        &self.exact
    }

    /// Whether the selection needs the list of names (everything, or a pattern).
    pub fn needs_listing(&self) -> bool {
        self.is_all() || !self.patterns.is_empty()
    }

    /// The names meant among what `resolver` holds (listed only when a pattern or "everything"
    /// needs it: exact names cost no listing).
    ///
    /// # Errors
    /// The listing fails; a pattern matches nothing.
    pub fn names(&self, resolver: &sigil_core::Resolver) -> Result<Vec<SecretName>, Error> {
        let listed: Vec<SecretName> = if self.needs_listing() {
            resolver.list()?.into_iter().map(|l| l.name).collect()
        } else {
            Vec::new()
        };
        self.select(&listed)
    }

    /// The names meant, sorted: the exact ones, and those of `listed` a pattern matches.
    ///
    /// # Errors
    /// A pattern that matches no listed name (a typo must not run a command without secrets).
    pub fn select(&self, listed: &[SecretName]) -> Result<Vec<SecretName>, Error> {
        if self.is_all() {
            let mut all = listed.to_vec();
            all.sort();
            all.dedup();
            return Ok(all);
        }
        let mut out: BTreeSet<SecretName> = self.exact.clone();
        for p in &self.patterns {
            let before = out.len();
            let mut any = false;
            for n in listed.iter().filter(|n| glob(p, n.as_str())) {
                any = true;
                out.insert(n.clone());
            }
            if !any && out.len() == before {
                return Err(Error::NotFound {
                    name: p.clone(),
                    searched: vec!["no secret's name matches this pattern".into()],
                });
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<SecretName> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("prod/*", "prod/db"));
        assert!(glob("prod/*", "prod/a/b"));
        assert!(!glob("prod/*", "production"));
        assert!(glob("*_PASSWORD", "DB_PASSWORD"));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
        assert!(glob("*", "") && glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn exact_globs_and_prefixes() {
        let listed = names(&["prod/db", "prod/api", "dev/db", "TOKEN", "DB_PASSWORD"]);
        let only = |v: &[&str]| {
            Selection::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let picked = only(&["prod/"]).select(&listed).unwrap();
        assert_eq!(picked, names(&["prod/api", "prod/db"]));
        let s = only(&["TOKEN", "*_PASSWORD"]);
        assert_eq!(s.select(&listed).unwrap(), names(&["DB_PASSWORD", "TOKEN"]));
        assert_eq!(s.exact().len(), 1, "a pattern's names are not explicit");
        assert!(
            only(&["staging/*"])
                .select(&listed)
                .unwrap_err()
                .is_not_found()
        );
        assert_eq!(only(&[]).select(&listed).unwrap().len(), 5);
        assert!(Selection::parse(&["prod/$*".to_string()]).is_err());
    }
}
