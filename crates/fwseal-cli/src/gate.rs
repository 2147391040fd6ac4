//! The provenance half of `fwseal verify`: find and check the envelope, then the deployment
//! gate — builder id and claim checks from flags and from a policy file (`--policy`), on the
//! claims the appliance verified, relaxed to client-asserted ones only when asked (and then
//! loudly). The contract is `formats/provenance.md`, "Verifying".

use crate::{names, read_input, trust::TrustedKey};
use anyhow::{Context, Result};
use clap::builder::NonEmptyStringValueParser;
use clap::Args;
use fwseal_provenance::{Basis, Check, Passed, Policy, ProvenanceError, Requirement};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Provenance options of `fwseal verify`.
#[derive(Args)]
pub struct GateArgs {
    /// Provenance envelope to check. Default: IMAGE.intoto.jsonl (with --detached D.sig.json:
    /// D.intoto.jsonl). When any provenance option is given and no envelope is found, the
    /// verification fails.
    #[arg(long)]
    pub provenance: Option<PathBuf>,
    /// Trusted appliance (provenance) public key, repeatable. Required to check provenance;
    /// `fwseal keys export -p fwseal-appliance` fetches them.
    #[arg(long = "provenance-key")]
    pub provenance_keys: Vec<PathBuf>,
    /// Require the provenance's builder id (the appliance identity) to equal this.
    #[arg(long, value_parser = NonEmptyStringValueParser::new())]
    pub builder_id: Option<String>,
    /// Require the verified OIDC issuer to equal this.
    #[arg(long, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    pub issuer: Option<String>,
    /// Require the verified repository (owner/name) to match this pattern.
    #[arg(long, value_name = "PATTERN", value_parser = NonEmptyStringValueParser::new())]
    pub repository: Option<String>,
    /// Require the verified source repository URI to equal this (git+ prefix, .git suffix,
    /// trailing / and host case ignored). Checks VERIFIED claims: a static-token provenance
    /// passes only with --accept-client-claims.
    #[arg(long, value_name = "URI", value_parser = NonEmptyStringValueParser::new())]
    pub source_uri: Option<String>,
    /// Require the verified full git ref to match this pattern (e.g. 'refs/tags/v*').
    #[arg(long = "ref", value_name = "PATTERN", value_parser = NonEmptyStringValueParser::new())]
    pub git_ref: Option<String>,
    /// Require the verified commit to equal this (hex, case-insensitive).
    #[arg(long, value_name = "SHA", value_parser = NonEmptyStringValueParser::new())]
    pub commit: Option<String>,
    /// Require the verified workflow ref to match this pattern
    /// (e.g. 'acme/widget/.github/workflows/release.yml@refs/tags/*').
    #[arg(long, value_name = "PATTERN", value_parser = NonEmptyStringValueParser::new())]
    pub workflow: Option<String>,
    /// Require the verified deployment environment to match this pattern.
    #[arg(long, value_name = "PATTERN", value_parser = NonEmptyStringValueParser::new())]
    pub environment: Option<String>,
    /// DANGEROUS: let --source-uri/--ref/--commit/--repository pass on what the submitting
    /// client asserted when the provenance has no verified claim (static-token signings).
    /// Every check relaxed this way is warned about on stderr.
    #[arg(long)]
    pub accept_client_claims: bool,
    /// Policy file (.toml or .json): per-product checks, combined with the flags (all must
    /// hold). Format: formats/provenance.md, "Policy file".
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl GateArgs {
    /// Whether any option asks for provenance to be checked.
    fn wanted(&self) -> bool {
        self.provenance.is_some()
            || !self.provenance_keys.is_empty()
            || self.policy.is_some()
            || self.accept_client_claims
            || self.builder_id.is_some()
            || !self.flag_requirements().is_empty()
    }

    /// The claim checks given as flags.
    fn flag_requirements(&self) -> Vec<Requirement> {
        [
            (Check::Issuer, &self.issuer),
            (Check::Repository, &self.repository),
            (Check::SourceUri, &self.source_uri),
            (Check::Ref, &self.git_ref),
            (Check::Commit, &self.commit),
            (Check::Workflow, &self.workflow),
            (Check::Environment, &self.environment),
        ]
        .into_iter()
        .filter_map(|(c, v)| v.as_ref().map(|v| Requirement::new(c, v.clone())))
        .collect()
    }
}

/// A policy file that cannot be read or does not follow the schema (exit 4).
#[derive(Debug)]
pub struct PolicyFileError(pub String);

impl std::fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyFileError {}

/// The policy file has no section for the image's product (exit 1).
#[derive(Debug)]
pub struct NoSection {
    file: PathBuf,
    product: String,
    known: Vec<String>,
}

impl std::fmt::Display for NoSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "policy {} has no section for product {:?} (it names {}); a policy file covers only \
             the products it names",
            self.file.display(),
            self.product,
            self.known
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl std::error::Error for NoSection {}

/// A policy file: `[product.NAME]` sections (formats/provenance.md, "Policy file").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    product: BTreeMap<String, Section>,
}

/// One product's checks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    builder_id: Option<String>,
    issuer: Option<String>,
    repository: Option<String>,
    source_uri: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    commit: Option<String>,
    workflow: Option<String>,
    environment: Option<String>,
    #[serde(default)]
    accept_client_claims: bool,
}

impl Section {
    /// (policy-file key, check, value) for every check the section sets.
    fn entries(&self) -> Vec<(&'static str, Check, &str)> {
        [
            ("builder_id", Check::BuilderId, &self.builder_id),
            ("issuer", Check::Issuer, &self.issuer),
            ("repository", Check::Repository, &self.repository),
            ("source_uri", Check::SourceUri, &self.source_uri),
            ("ref", Check::Ref, &self.git_ref),
            ("commit", Check::Commit, &self.commit),
            ("workflow", Check::Workflow, &self.workflow),
            ("environment", Check::Environment, &self.environment),
        ]
        .into_iter()
        .filter_map(|(k, c, v)| v.as_deref().map(|v| (k, c, v)))
        .collect()
    }

    fn requirements(&self) -> Vec<Requirement> {
        self.entries()
            .into_iter()
            .map(|(_, c, v)| Requirement::new(c, v))
            .collect()
    }
}

impl PolicyFile {
    /// Parse `bytes` as the file `path` (its extension picks TOML or JSON).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, PolicyFileError> {
        let bad = |m: String| PolicyFileError(format!("policy {}: {m}", path.display()));
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let file: PolicyFile = match ext {
            "toml" => {
                let text =
                    std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
                toml::from_str(text).map_err(|e| bad(e.to_string()))?
            }
            "json" => serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?,
            _ => {
                return Err(bad(
                    "the file name must end in .toml or .json (that picks the syntax)".into(),
                ))
            }
        };
        if file.product.is_empty() {
            return Err(bad(
                "names no product (expected [product.NAME] sections)".into()
            ));
        }
        for (name, section) in &file.product {
            for (key, _, value) in section.entries() {
                if value.is_empty() {
                    return Err(bad(format!("product.{name}.{key} is empty")));
                }
            }
        }
        Ok(file)
    }

    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyFileError> {
        let bytes = std::fs::read(path)
            .map_err(|e| PolicyFileError(format!("cannot read policy {}: {e}", path.display())))?;
        Self::parse(path, &bytes)
    }

    fn section(&self, path: &Path, product: &str) -> Result<&Section, NoSection> {
        self.product.get(product).ok_or_else(|| NoSection {
            file: path.to_path_buf(),
            product: product.to_string(),
            known: self.product.keys().cloned().collect(),
        })
    }
}

/// What the provenance check found: the envelope, its statement and the checks that passed.
pub struct Outcome {
    file: PathBuf,
    statement: Value,
    checks: Vec<Passed>,
    policy_file: Option<PathBuf>,
    accept_client_claims: bool,
}

impl Outcome {
    fn field<'a>(&'a self, path: &[&str]) -> &'a str {
        path.iter()
            .fold(&self.statement, |v, k| &v[*k])
            .as_str()
            .unwrap_or("-")
    }

    fn verified_claims(&self) -> Option<&Value> {
        Some(
            &self.statement["predicate"]["buildDefinition"]["externalParameters"]["verifiedClaims"],
        )
        .filter(|v| v.is_object())
    }

    /// Text lines for `fwseal verify`.
    pub fn lines(&self) -> Vec<String> {
        let source = match self.verified_claims() {
            Some(v) => format!(
                "verified claims from OIDC issuer {}",
                v["issuer"].as_str().unwrap_or("-")
            ),
            None => "no verified claims: not an OIDC-authenticated signing".into(),
        };
        let mut out = vec![format!(
            "OK provenance {} (builder {}, product {}, {})",
            self.file.display(),
            self.field(&["predicate", "runDetails", "builder", "id"]),
            self.field(&[
                "predicate",
                "buildDefinition",
                "internalParameters",
                "product"
            ]),
            source
        )];
        for c in &self.checks {
            let how = if fwseal_provenance::is_glob(&c.expected)
                && !matches!(
                    c.check,
                    Check::Issuer | Check::BuilderId | Check::SourceUri | Check::Commit
                ) {
                format!("matches {:?}", c.expected)
            } else {
                format!("= {:?}", c.expected)
            };
            out.push(match c.basis {
                Basis::ClientAsserted => format!(
                    "RELAXED check {} {:?} {how} (CLIENT-ASSERTED, not verified by the appliance)",
                    c.check, c.found
                ),
                b => format!("OK check {} {:?} {how} ({b})", c.check, c.found),
            });
        }
        out
    }

    /// The `provenance` object of `fwseal verify --json`.
    pub fn json(&self) -> Value {
        json!({
            "file": self.file.display().to_string(),
            "build_type": self.field(&["predicate", "buildDefinition", "buildType"]),
            "product": self.field(&["predicate", "buildDefinition", "internalParameters", "product"]),
            "builder": self.field(&["predicate", "runDetails", "builder", "id"]),
            "verified_claims": self.verified_claims(),
            "policy_file": self.policy_file.as_ref().map(|p| p.display().to_string()),
            "accept_client_claims": self.accept_client_claims,
            "checks": self.checks,
        })
    }
}

/// The check a verification error names (`failed_check` of `--json`): a builder-id or claim
/// check, or `policy` for a policy file without a section for the product.
pub fn failed_check(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|c| {
        if c.downcast_ref::<NoSection>().is_some() {
            return Some("policy");
        }
        c.downcast_ref::<ProvenanceError>()
            .and_then(ProvenanceError::check)
            .map(Check::name)
    })
}

/// Check the provenance envelope when one is given or found next to the image (by the naming
/// rule in [`names`]). Returns `None` when no provenance option was given (a note says so if
/// an envelope lies there unchecked). A gate never passes silently: with any provenance option
/// and no envelope, or without the keys to check one, it fails.
pub fn check_provenance(
    a: &GateArgs,
    input: &Path,
    detached: Option<&Path>,
    image: &[u8],
    image_signatures_sha256: Vec<String>,
) -> Result<Option<Outcome>> {
    // A broken policy file is an error whatever else happens.
    let policy_file = match &a.policy {
        Some(p) => Some(PolicyFile::load(p)?),
        None => None,
    };
    let wanted = a.wanted();
    let default = match detached {
        Some(doc) => names::provenance_for_detached(doc),
        None => names::provenance_for(input),
    };
    let path = match &a.provenance {
        Some(p) => p.clone(),
        None if default.exists() => default,
        None if wanted => anyhow::bail!(
            "provenance not checked: no envelope found at {} (give --provenance FILE)",
            default.display()
        ),
        None => return Ok(None),
    };
    if a.provenance_keys.is_empty() {
        if wanted {
            anyhow::bail!(
                "provenance not checked: checking {} needs the appliance's public keys \
                 (--provenance-key; `fwseal keys export -p fwseal-appliance` fetches them)",
                path.display()
            );
        }
        eprintln!(
            "fwseal: note: provenance {} not checked (no --provenance-key given)",
            path.display()
        );
        return Ok(None);
    }
    let mut keys = Vec::new();
    for k in &a.provenance_keys {
        let t = TrustedKey::load(k)?;
        let alg = fwseal_crypto::SigAlg::ALL
            .into_iter()
            .find(|alg| fwseal_crypto::PublicKey::from_spki_der(*alg, &t.spki).is_ok())
            .ok_or_else(|| anyhow::anyhow!("{}: unsupported provenance key type", k.display()))?;
        keys.push(fwseal_crypto::PublicKey::from_spki_der(alg, &t.spki)?);
    }
    let text = read_input(&path)?;
    // One envelope, one line (formats/provenance.md): never pick one of several.
    let mut lines = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
    let line = lines.next().unwrap_or_default();
    if lines.next().is_some() {
        anyhow::bail!(
            "{}: more than one non-blank line; a provenance file holds exactly one envelope",
            path.display()
        );
    }
    let env = fwseal_provenance::Envelope::from_json(line)
        .with_context(|| format!("{}", path.display()))?;
    let base = Policy {
        subject_sha256: Some(hex::encode(fwseal_crypto::DigestAlg::Sha256.hash(image))),
        image_signatures_sha256,
        ..Policy::default()
    };
    let ctx = || format!("provenance {}", path.display());
    // Signatures and subject first; the product the statement names then picks the section.
    let statement = fwseal_provenance::verify_report(&env, &keys, &base)
        .with_context(ctx)?
        .statement;
    let mut policy = Policy {
        builder_id: a.builder_id.clone(),
        claims: a.flag_requirements(),
        accept_client_claims: a.accept_client_claims,
        ..base
    };
    let mut relaxed_by = Vec::new();
    if a.accept_client_claims {
        relaxed_by.push("--accept-client-claims".to_string());
    }
    if let (Some(file), Some(p)) = (&policy_file, &a.policy) {
        let product = statement["predicate"]["buildDefinition"]["internalParameters"]["product"]
            .as_str()
            .unwrap_or_default();
        let section = file.section(p, product).with_context(ctx)?;
        policy.claims.extend(section.requirements());
        if section.accept_client_claims {
            policy.accept_client_claims = true;
            relaxed_by.push(format!(
                "accept_client_claims in [product.{product}] of {}",
                p.display()
            ));
        }
    }
    let checks = fwseal_provenance::check_statement(&statement, &policy).with_context(ctx)?;
    for c in checks.iter().filter(|c| c.basis == Basis::ClientAsserted) {
        eprintln!(
            "fwseal: WARNING: provenance check {} passed on CLIENT-ASSERTED data only: {:?} is \
             what the submitting client claimed, NOT a claim the appliance verified — anyone \
             holding a submitter token could have claimed it (relaxed by {})",
            c.check,
            c.found,
            relaxed_by.join(" and ")
        );
    }
    Ok(Some(Outcome {
        file: path,
        statement,
        checks,
        policy_file: a.policy.clone(),
        accept_client_claims: policy.accept_client_claims,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<PolicyFile, PolicyFileError> {
        PolicyFile::parse(Path::new(name), text.as_bytes())
    }

    #[test]
    fn policy_files_are_strict() {
        let ok = parse(
            "gate.toml",
            "[product.widget]\nrepository = \"acme/widget\"\nref = \"refs/tags/v*\"\n",
        )
        .expect("ok");
        let reqs = ok.product["widget"].requirements();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1], Requirement::new(Check::Ref, "refs/tags/v*"));
        let cases = [
            ("gate.toml", "[product.widget]\nrepo = \"x\"\n", "repo"),
            ("gate.toml", "[product.widget]\nref = 1\n", "ref"),
            (
                "gate.toml",
                "[product.widget]\nref = \"\"\n",
                "product.widget.ref is empty",
            ),
            ("gate.toml", "", "product"),
            ("gate.toml", "[products.widget]\n", "products"),
            ("gate.json", "{\"product\": {}}", "names no product"),
            (
                "gate.json",
                "{\"product\": {\"w\": {\"issuer\": null, \"x\": 1}}}",
                "unknown field `x`",
            ),
            ("gate.yaml", "product: {}", ".toml or .json"),
            ("gate.json", "[product.widget]", "gate.json"),
        ];
        for (name, text, want) in cases {
            let e = parse(name, text).expect_err(text).to_string();
            assert!(e.contains(want) && e.contains(name), "{text:?}: {e}");
        }
    }
}
