//! Claim matchers of `[[oidc.rules]]`: exact text, or a glob — the one pattern syntax of the
//! project, `fwseal_provenance::glob_match` (documented in `formats/provenance.md`, "Patterns"):
//! `*` a run without `/`, `**` any run, `?` one character except `/`, everything else literal,
//! whole value, case-sensitive. A deployment gate and a rule written with the same pattern
//! accept the same values.
//!
//! On top of it, the rules add one bound: claim values longer than [`MAX_VALUE`] never match
//! (a token is attacker-supplied text; matching is O(pattern × value)).

/// Longest claim value a matcher considers, bytes.
pub const MAX_VALUE: usize = 4096;

/// Whether `value` matches `pattern` (see the module documentation).
pub fn matches(pattern: &str, value: &str) -> bool {
    value.len() <= MAX_VALUE && fwseal_provenance::glob_match(pattern, value)
}

/// Whether a pattern pins something: it does not start with a metacharacter (so `*`, `?x` or
/// `**/x` do not).
pub fn pins(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.starts_with(['*', '?'])
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
        assert!(matches("a**c", "a/b/c"));
    }

    #[test]
    fn question_mark_is_one_character_like_the_gate() {
        assert!(matches("refs/tags/v?", "refs/tags/v1"));
        assert!(!matches("refs/tags/v?", "refs/tags/v12"));
        assert!(!matches("a?c", "a/c"));
        for (p, v) in [("v?.*", "v1.2"), ("acme/*", "acme/x/y"), ("a?c", "abc")] {
            assert_eq!(
                matches(p, v),
                fwseal_provenance::glob_match(p, v),
                "{p} {v}"
            );
        }
    }

    #[test]
    fn values_are_whole_and_bounded() {
        assert!(!matches("acme/widget", "acme/widget2"));
        assert!(!matches("acme/widget", "Acme/widget"));
        assert!(!matches("*", &"x".repeat(MAX_VALUE + 1)));
        assert!(matches("*", &"x".repeat(MAX_VALUE)));
        let v = "a".repeat(MAX_VALUE);
        assert!(!matches(&format!("{}b", "*a".repeat(50)), &v));
        assert!(pins("acme/*") && !pins("*") && !pins("**/x") && !pins("?cme") && !pins(""));
    }
}
