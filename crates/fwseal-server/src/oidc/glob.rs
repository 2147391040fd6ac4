//! Claim matchers of `[[oidc.rules]]`: exact text, or a glob.
//!
//! Semantics (whole-value match, case-sensitive, no escapes):
//! - `*` matches any run of characters **except `/`** (possibly empty), so `refs/tags/v*`
//!   matches `refs/tags/v1.2.0` but not `refs/tags/v1/evil`;
//! - `**` matches any run of characters **including `/`** (possibly empty), so
//!   `acme/widget/.github/workflows/**` matches every workflow file under that directory;
//! - every other character (including `?`, `[`, `.`) matches only itself.
//!
//! A pattern without `*` is an exact match. Matching is O(pattern × value) (no backtracking
//! blow-up), and values longer than [`MAX_VALUE`] never match.

/// Longest claim value a matcher considers, bytes.
pub const MAX_VALUE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: a run without `/`.
    Star,
    /// `**`: any run.
    Any,
}

fn tokens(pattern: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        if c == '*' {
            if it.peek() == Some(&'*') {
                while it.peek() == Some(&'*') {
                    it.next();
                }
                out.push(Tok::Any);
            } else {
                out.push(Tok::Star);
            }
        } else {
            out.push(Tok::Lit(c));
        }
    }
    out
}

/// Whether `value` matches `pattern` (see the module documentation).
pub fn matches(pattern: &str, value: &str) -> bool {
    if value.len() > MAX_VALUE {
        return false;
    }
    if !pattern.contains('*') {
        return pattern == value;
    }
    let p = tokens(pattern);
    let v: Vec<char> = value.chars().collect();
    // m[j]: the first i tokens match v[..j].
    let mut m = vec![false; v.len() + 1];
    m[0] = true;
    for t in &p {
        let mut next = vec![false; v.len() + 1];
        match t {
            Tok::Lit(c) => {
                for j in 0..v.len() {
                    next[j + 1] = m[j] && v[j] == *c;
                }
            }
            Tok::Star | Tok::Any => {
                let crosses = *t == Tok::Any;
                next[0] = m[0];
                for j in 1..=v.len() {
                    next[j] = m[j] || (next[j - 1] && (crosses || v[j - 1] != '/'));
                }
            }
        }
        m = next;
    }
    m[v.len()]
}

/// Whether a pattern pins something: it does not start with `*` (so `*` or `**/x` do not).
pub fn pins(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.starts_with('*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_stays_within_a_segment_and_double_star_crosses() {
        assert!(matches("refs/tags/v*", "refs/tags/v1.2.0"));
        assert!(matches("refs/tags/v*", "refs/tags/v"));
        assert!(!matches("refs/tags/v*", "refs/tags/v1/evil"));
        assert!(!matches("refs/tags/v*", "refs/heads/v1"));
        assert!(matches("refs/tags/**", "refs/tags/a/b/c"));
        assert!(matches(
            "acme/widget/.github/workflows/release.yml@refs/tags/*",
            "acme/widget/.github/workflows/release.yml@refs/tags/v1.2.0"
        ));
        assert!(!matches(
            "acme/widget/.github/workflows/release.yml@refs/tags/*",
            "acme/widget/.github/workflows/release.yml@refs/heads/main"
        ));
        assert!(matches("*@acme.example", "alice@acme.example"));
        assert!(!matches("*@acme.example", "alice@acme.example.evil"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY/c"));
        assert!(matches("a**c", "a/b/c"));
    }

    #[test]
    fn everything_else_is_literal_and_whole_value() {
        assert!(matches("acme/widget", "acme/widget"));
        assert!(!matches("acme/widget", "acme/widget2"));
        assert!(!matches("acme/widget", "Acme/widget"));
        assert!(!matches("a?c", "abc"));
        assert!(matches("a?c", "a?c"));
        assert!(!matches("v1.*", "v1x2"));
        assert!(matches("", ""));
        assert!(!matches("*", &"x".repeat(MAX_VALUE + 1)));
        // No exponential backtracking on adversarial input.
        let v = "a".repeat(MAX_VALUE);
        assert!(!matches(&format!("{}b", "*a".repeat(50)), &v));
        assert!(pins("acme/*") && !pins("*") && !pins("**/x") && !pins(""));
    }
}
