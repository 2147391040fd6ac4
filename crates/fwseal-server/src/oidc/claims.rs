//! Token claims → [`VerifiedClaims`], per issuer kind, and the bounded claim map rules match on.

use super::IssuerKind;
use fwseal_provenance::VerifiedClaims;
use serde_json::{Map, Value};

/// Most claims kept for rule matching (and stored with an OIDC approval).
pub const MAX_CLAIMS: usize = 64;
/// Longest claim value kept, bytes.
pub const MAX_CLAIM_VALUE: usize = 1024;

/// A claim as text: strings as they are, numbers and booleans in their JSON spelling; other
/// types (arrays, objects, null) are not text.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The claims rules may match on: top-level text claims other than the validity and audience
/// claims, each at most [`MAX_CLAIM_VALUE`] bytes, at most [`MAX_CLAIMS`] of them (in name
/// order). Bounded whatever the token held.
pub fn matchable(claims: &Map<String, Value>) -> Map<String, Value> {
    let mut names: Vec<&String> = claims.keys().collect();
    names.sort();
    let mut out = Map::new();
    for k in names {
        if out.len() >= MAX_CLAIMS {
            break;
        }
        if matches!(k.as_str(), "aud" | "exp" | "iat" | "nbf") || k.len() > 128 {
            continue;
        }
        if let Some(t) = claims.get(k).and_then(text) {
            if t.len() <= MAX_CLAIM_VALUE {
                out.insert(k.clone(), Value::String(t));
            }
        }
    }
    out
}

fn get(c: &Map<String, Value>, k: &str) -> Option<String> {
    c.get(k).and_then(text).filter(|s| !s.is_empty())
}

/// The verified claims of a token from an issuer of `kind`. `issuer` is the configured (and
/// matched) `iss`; `source_host` the base URL source repositories live under (no trailing `/`).
pub fn verified(
    kind: IssuerKind,
    issuer: &str,
    source_host: Option<&str>,
    c: &Map<String, Value>,
) -> VerifiedClaims {
    let mut v = VerifiedClaims {
        issuer: issuer.to_string(),
        subject: get(c, "sub").unwrap_or_default(),
        jti: get(c, "jti"),
        ..Default::default()
    };
    let host = source_host.map(|h| h.trim_end_matches('/').to_string());
    match kind {
        IssuerKind::Github => {
            v.repository = get(c, "repository");
            v.git_ref = get(c, "ref");
            v.commit = get(c, "sha");
            v.workflow_ref = get(c, "workflow_ref");
            v.run_id = get(c, "run_id");
            v.environment = get(c, "environment");
            if let (Some(h), Some(r)) = (&host, &v.repository) {
                v.source_uri = Some(format!("git+{h}/{r}"));
                // The run, as GitHub's `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/
                // GITHUB_RUN_ID` (what a client sends as its run URL; the attempt is not part).
                v.run_url = v
                    .run_id
                    .as_ref()
                    .map(|id| format!("{h}/{r}/actions/runs/{id}"));
            }
        }
        IssuerKind::Gitlab => {
            v.repository = get(c, "project_path");
            v.git_ref = get(c, "ref").map(|r| match get(c, "ref_type").as_deref() {
                _ if r.starts_with("refs/") => r,
                Some("branch") => format!("refs/heads/{r}"),
                Some("tag") => format!("refs/tags/{r}"),
                _ => r,
            });
            v.commit = get(c, "sha");
            v.workflow_ref = get(c, "ci_config_ref_uri");
            v.run_id = get(c, "pipeline_id");
            v.environment = get(c, "environment");
            if let (Some(h), Some(p)) = (&host, &v.repository) {
                v.source_uri = Some(format!("git+{h}/{p}"));
                // The pipeline (`run_id` is `pipeline_id`), as GitLab's `CI_PIPELINE_URL`.
                v.run_url = v
                    .run_id
                    .as_ref()
                    .map(|id| format!("{h}/{p}/-/pipelines/{id}"));
            }
        }
        IssuerKind::Generic => {}
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn github_and_gitlab_claims_map_to_verified_claims() {
        let gh = map(serde_json::json!({
            "sub": "repo:acme/widget:ref:refs/tags/v1", "repository": "acme/widget",
            "ref": "refs/tags/v1", "sha": "ab", "workflow_ref": "acme/widget/.github/workflows/r.yml@refs/tags/v1",
            "run_id": "42", "run_attempt": "2", "environment": "prod", "jti": "j"
        }));
        let v = verified(
            IssuerKind::Github,
            "https://token.actions.githubusercontent.com",
            Some("https://github.com/"),
            &gh,
        );
        assert_eq!(
            v.source_uri.as_deref(),
            Some("git+https://github.com/acme/widget")
        );
        assert_eq!(
            v.run_url.as_deref(),
            Some("https://github.com/acme/widget/actions/runs/42")
        );
        assert_eq!(
            (v.git_ref.as_deref(), v.commit.as_deref(), v.jti.as_deref()),
            (Some("refs/tags/v1"), Some("ab"), Some("j"))
        );
        assert_eq!(v.environment.as_deref(), Some("prod"));
        let gl = map(serde_json::json!({
            "sub": "project_path:g/p:ref_type:branch:ref:main", "project_path": "g/p",
            "ref": "main", "ref_type": "branch", "sha": "cd", "pipeline_id": 455, "job_id": "7",
            "ci_config_ref_uri": "gitlab.example.com/g/p//.gitlab-ci.yml@refs/heads/main"
        }));
        let v = verified(
            IssuerKind::Gitlab,
            "https://gitlab.example.com",
            Some("https://gitlab.example.com"),
            &gl,
        );
        assert_eq!(v.git_ref.as_deref(), Some("refs/heads/main"));
        assert_eq!(v.run_id.as_deref(), Some("455"));
        assert_eq!(
            v.run_url.as_deref(),
            Some("https://gitlab.example.com/g/p/-/pipelines/455")
        );
        assert_eq!(
            v.source_uri.as_deref(),
            Some("git+https://gitlab.example.com/g/p")
        );
        let g = verified(IssuerKind::Generic, "https://idp", None, &gh);
        assert_eq!(
            (g.repository, g.subject.as_str()),
            (None, gh["sub"].as_str().unwrap())
        );
    }

    #[test]
    fn matchable_claims_are_bounded() {
        let mut m = Map::new();
        for i in 0..200 {
            m.insert(format!("c{i:03}"), Value::String("x".repeat(10)));
        }
        m.insert("aaa".into(), Value::String("y".repeat(5000)));
        m.insert("aab".into(), serde_json::json!(["not", "text"]));
        m.insert("exp".into(), serde_json::json!(1));
        let k = matchable(&m);
        assert_eq!(k.len(), MAX_CLAIMS);
        assert!(!k.contains_key("aaa") && !k.contains_key("aab") && !k.contains_key("exp"));
    }
}
