//! The glob patterns of verification policies: the semantics of GitHub Actions' branch/tag
//! filters, reduced to three metacharacters. Documented in `formats/provenance.md`, "Patterns".
//! fwseald's OIDC rules (`fwseal-server` `oidc::glob`) use this same matcher, so a rule and a
//! gate written with one pattern accept the same values.
//!
//! - `*` matches any run of characters (also none) **except `/`**;
//! - `**` matches any run of characters (also none), `/` included;
//! - `?` matches exactly one character except `/`;
//! - every other character, `[`, `]`, `\`, `!` and `+` included, matches only itself; there is
//!   no escape, no character class, no negation;
//! - the pattern matches the **whole** value, case-sensitively, character by character (Unicode
//!   scalar values). A pattern without metacharacters is an exact comparison.

/// One pattern element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    /// A literal character.
    Lit(char),
    /// `?`: one character, not `/`.
    One,
    /// `*`: a run without `/`.
    Seg,
    /// `**`: any run.
    Any,
}

fn tokens(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' if it.peek() == Some(&'*') => {
                // `**`, and any further stars, are one `Any`.
                while it.peek() == Some(&'*') {
                    it.next();
                }
                Tok::Any
            }
            '*' => Tok::Seg,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    out
}

/// Whether `pattern` matches all of `value` (see the module documentation for the syntax).
/// Runs in O(len(pattern) × len(value)) time; never backtracks exponentially.
///
/// ```
/// use fwseal_provenance::glob_match;
/// assert!(glob_match("refs/tags/v*", "refs/tags/v1.2.0"));
/// assert!(!glob_match("refs/tags/v*", "refs/tags/v1/evil"));
/// assert!(glob_match("acme/widget/.github/workflows/release.yml@**",
///                    "acme/widget/.github/workflows/release.yml@refs/heads/release/1.x"));
/// assert!(!glob_match("acme/widget", "acme/widget-fork"));
/// ```
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let p = tokens(pattern);
    let v: Vec<char> = value.chars().collect();
    // reach[j]: the first i pattern tokens can match v[..j].
    let mut reach = vec![false; v.len() + 1];
    reach[0] = true;
    for t in &p {
        let mut next = vec![false; v.len() + 1];
        match *t {
            Tok::Lit(c) => {
                for j in 0..v.len() {
                    next[j + 1] = reach[j] && v[j] == c;
                }
            }
            Tok::One => {
                for j in 0..v.len() {
                    next[j + 1] = reach[j] && v[j] != '/';
                }
            }
            Tok::Seg => {
                next[0] = reach[0];
                for j in 0..v.len() {
                    next[j + 1] = reach[j + 1] || (next[j] && v[j] != '/');
                }
            }
            Tok::Any => {
                next[0] = reach[0];
                for j in 0..v.len() {
                    next[j + 1] = reach[j + 1] || next[j];
                }
            }
        }
        reach = next;
    }
    reach[v.len()]
}

/// Whether `pattern` has a metacharacter (`*` or `?`); without one it is an exact comparison.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn literals_are_exact_and_whole() {
        assert!(m("acme/widget", "acme/widget"));
        assert!(!m("acme/widget", "acme/widget2"));
        assert!(!m("acme/widget", "xacme/widget"));
        assert!(!m("acme/widget", "Acme/widget"), "case-sensitive");
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(!m("x", ""));
        // No classes, escapes or negation: these are literal characters.
        assert!(m("v[12]", "v[12]"));
        assert!(!m("v[12]", "v1"));
        assert!(m(r"a\*", r"a\b"), r"`\` is literal, `*` still a wildcard");
        assert!(!m(r"a\*", "a*b"));
        assert!(m("!main", "!main"));
        assert!(!m("!main", "dev"));
        assert!(m("a+b", "a+b"));
    }

    #[test]
    fn star_stays_within_a_segment() {
        assert!(m("refs/tags/v*", "refs/tags/v"));
        assert!(m("refs/tags/v*", "refs/tags/v1.2.0"));
        assert!(!m("refs/tags/v*", "refs/tags/v1/2"));
        assert!(!m("refs/tags/v*", "refs/heads/v1"));
        assert!(m("refs/heads/*", "refs/heads/main"));
        assert!(!m("refs/heads/*", "refs/heads/feature/x"));
        assert!(m("*/widget", "acme/widget"));
        assert!(!m("*/widget", "a/b/widget"));
        assert!(m("refs/*/main", "refs/heads/main"));
        assert!(m("v*.*.*", "v1.22.333"));
        assert!(!m("v*.*.*", "v1.22"));
        assert!(m("*", ""));
        assert!(!m("*", "a/b"));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(m("refs/heads/**", "refs/heads/feature/x/y"));
        assert!(m("refs/heads/**", "refs/heads/"));
        assert!(m("**", "anything/at/all"));
        assert!(m("**", ""));
        assert!(m("a/**/z", "a/b/c/z"));
        assert!(m("a/**/z", "a//z"));
        assert!(!m("a/**/z", "a/z"), "the slashes around ** are literal");
        assert!(m("a/***", "a/b/c"), "three stars are `**`");
        assert!(m(
            "acme/widget/.github/workflows/release.yml@refs/tags/*",
            "acme/widget/.github/workflows/release.yml@refs/tags/v1.2.0"
        ));
        assert!(!m(
            "acme/widget/.github/workflows/release.yml@refs/tags/*",
            "acme/widget/.github/workflows/other.yml@refs/tags/v1.2.0"
        ));
    }

    #[test]
    fn question_mark_is_one_character_not_slash() {
        assert!(m("v?", "v1"));
        assert!(!m("v?", "v"));
        assert!(!m("v?", "v12"));
        assert!(!m("a?b", "a/b"));
        assert!(m("?", "é"), "one Unicode character, not one byte");
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let value = "a".repeat(4000);
        let pattern = format!("*{}b", "a*".repeat(200));
        let t = std::time::Instant::now();
        assert!(!m(&pattern, &value));
        assert!(m(&"**a".repeat(200), &value));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}
