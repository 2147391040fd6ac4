//! Config validation: approval policies and reload-time checks.
#![allow(clippy::unwrap_used)]
use fwseal_server::config::*;

const HASHES: [&str; 4] = [
    "1111111111111111111111111111111111111111111111111111111111111111",
    "2222222222222222222222222222222222222222222222222222222222222222",
    "3333333333333333333333333333333333333333333333333333333333333333",
    "4444444444444444444444444444444444444444444444444444444444444444",
];

fn cfg(approvals: &str, approver_roles: &[&str]) -> Result<Config, ConfigError> {
    let mut t = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"/tmp/x\"\nidentity = \"i\"\n\
         [hsm]\ndev_token = true\n[[product]]\nname = \"p\"\n{approvals}\n\
         [[client]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nroles = {{ p = [\"submitter\"] }}\n",
        HASHES[0]
    );
    for (i, r) in approver_roles.iter().enumerate() {
        t.push_str(&format!(
            "[[client]]\nname = \"a{i}\"\ntoken_sha256 = \"{}\"\nroles = {{ {r} }}\n",
            HASHES[i + 1]
        ));
    }
    Config::parse(&t, std::path::Path::new("test.toml"))
}

fn invalid(r: Result<Config, ConfigError>, want: &str) {
    match r {
        Err(ConfigError::Invalid(m)) | Err(ConfigError::Parse { message: m, .. }) => {
            assert!(m.contains(want), "{m:?} lacks {want:?}")
        }
        other => panic!("expected an error mentioning {want:?}, got {other:?}"),
    }
}

#[test]
fn approval_policies_are_validated() {
    let c = cfg(
        "approvals = { required = 2, of_role = \"release-approver\" }",
        &["p = [\"release-approver\"]", "\"*\" = [\"admin\"]"],
    )
    .unwrap();
    let a = c.product("p").unwrap().approvals.clone().unwrap();
    assert_eq!(a.required, 2);
    assert_eq!(a.expires_after_secs, 7 * 24 * 3600);
    assert!(a.applies_to(Some(5)));
    // `approver` is an alias of release-approver.
    cfg(
        "approvals = { required = 1, of_role = \"approver\" }",
        &["p = [\"approver\"]"],
    )
    .unwrap();
    invalid(
        cfg(
            "approvals = { required = 0 }",
            &["p = [\"release-approver\"]"],
        ),
        "at least 1",
    );
    invalid(
        cfg(
            "approvals = { required = 3, of_role = \"release-approver\" }",
            &["p = [\"release-approver\"]", "p = [\"factory\"]"],
        ),
        "only 1 client(s) hold the release-approver role",
    );
    invalid(
        cfg("approvals = { required = 1, of_role = \"boss\" }", &[]),
        "unknown variant",
    );
    invalid(
        cfg(
            "approvals = { required = 1, expires_after_secs = 0 }",
            &["p = [\"release-approver\"]"],
        ),
        "expires_after_secs",
    );
    invalid(
        cfg(
            "approvals = { required = 1, key_versions = [0] }",
            &["p = [\"release-approver\"]"],
        ),
        "key_versions",
    );
}

#[test]
fn key_versions_restrict_the_policy() {
    let c = cfg(
        "approvals = { required = 1, key_versions = [2] }",
        &["p = [\"release-approver\"]"],
    )
    .unwrap();
    let a = c.product("p").unwrap().approvals.clone().unwrap();
    assert!(a.applies_to(Some(2)));
    assert!(!a.applies_to(Some(1)));
    assert!(a.applies_to(None), "an unknown version fails closed");
}

#[test]
fn the_documented_example_config_is_valid() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm-config/fwseal.toml");
    let c = Config::load(&p).unwrap();
    assert!(c.products.iter().any(|p| p.approvals.is_some()));
}

/// The MCUboot product options reach the signing options; nonsense values and trailer options
/// without a slot size are refused at load (and so on reload).
#[test]
fn mcuboot_options_are_validated_and_reach_the_sign_options() {
    use fwseal_formats::mcuboot::{PublicKeyFormat, Slot};
    let c = cfg(
        "[product.options]\nmcuboot_public_key = \"full\"\nmcuboot_slot_size = 0x20000\n\
         mcuboot_align = 8\nmcuboot_max_sectors = 64",
        &[],
    )
    .unwrap();
    let o = c.product("p").unwrap().sign_options(None);
    assert_eq!(o.mcuboot_public_key, PublicKeyFormat::Full);
    assert_eq!(
        o.mcuboot_slot,
        Some(Slot {
            size: 0x20000,
            align: 8,
            max_align: None,
            max_sectors: 64,
            overwrite_only: false,
        })
    );
    // Defaults: KEYHASH, no slot check.
    let d = cfg("", &[])
        .unwrap()
        .product("p")
        .unwrap()
        .sign_options(None);
    assert_eq!(
        (d.mcuboot_public_key, d.mcuboot_slot),
        (PublicKeyFormat::Hash, None)
    );
    for (opts, want) in [
        ("mcuboot_public_key = \"raw\"", "unknown variant"),
        ("mcuboot_slot_size = 0", "at least 1 byte"),
        ("mcuboot_slot_size = 4096\nmcuboot_align = 3", "align 3"),
        (
            "mcuboot_slot_size = 4096\nmcuboot_max_align = 4",
            "max_align 4",
        ),
        (
            "mcuboot_slot_size = 4096\nmcuboot_max_sectors = 0",
            "max_sectors",
        ),
        ("mcuboot_align = 4", "need mcuboot_slot_size"),
        ("mcuboot_overwrite_only = true", "need mcuboot_slot_size"),
    ] {
        invalid(cfg(&format!("[product.options]\n{opts}"), &[]), want);
    }
}

#[test]
fn the_appliance_product_name_is_reserved() {
    let t = format!(
        "listen = \"127.0.0.1:0\"\nstate_dir = \"/tmp/x\"\nidentity = \"i\"\n\
         [hsm]\ndev_token = true\n[[product]]\nname = \"{}\"\n\
         [[client]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nroles = {{ p = [\"submitter\"] }}\n",
        fwseal_api::APPLIANCE,
        HASHES[0]
    );
    invalid(
        Config::parse(&t, std::path::Path::new("test.toml")),
        "reserved",
    );
}

/// The commented `[tsa_server]` example of `hsm-config/fwseal.toml`, uncommented, is valid;
/// bad values are refused at load with messages naming the key.
#[test]
fn tsa_server_section_is_validated() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hsm-config/fwseal.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let start = text.find("# [tsa_server]").expect("example [tsa_server]");
    let mut doc = text[..start].to_string();
    for line in text[start..].lines() {
        let l = line.strip_prefix("# ").unwrap_or(line);
        if !l.starts_with('#') {
            doc.push_str(l);
            doc.push('\n');
        }
    }
    let c = Config::parse(&doc, &p).unwrap();
    let t = c.tsa_server.expect("the example enables [tsa_server]");
    assert_eq!(t.policy_oid, "1.3.6.1.4.1.55555.7.1");
    assert_eq!(t.subject_cn(&c.identity), "fwseal TSA acme");
    assert!(!t.anonymous);

    let with = |section: &str| {
        cfg(
            &format!("[tsa_server]\n{section}\n[[product]]\nname = \"q\""),
            &[],
        )
    };
    let ok = with("policy_oid = \"1.2.3.4\"").unwrap();
    let t = ok.tsa_server.unwrap();
    assert_eq!(
        (t.accuracy_ms, t.certificate_days, t.anonymous),
        (1000, 3650, false)
    );
    assert_eq!(t.hash_algs.len(), 3);
    assert_eq!(t.subject_cn("i"), "fwseal TSA i");
    invalid(with("accuracy_ms = 5"), "policy_oid");
    invalid(with("policy_oid = \"x.y\""), "policy_oid");
    invalid(with("policy_oid = \"1.2.3\"\nhash_algs = []"), "hash_algs");
    invalid(
        with("policy_oid = \"1.2.3\"\nhash_algs = [\"sha1\"]"),
        "sha1",
    );
    invalid(
        with("policy_oid = \"1.2.3\"\ncertificate_days = 0"),
        "certificate_days",
    );
    invalid(with("policy_oid = \"1.2.3\"\nbogus = 1"), "bogus");
    invalid(
        cfg("[[product]]\nname = \"fwseal-tsa\"", &[]),
        "reserved for the built-in TSA",
    );
}
