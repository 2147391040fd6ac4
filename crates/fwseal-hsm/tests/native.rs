//! Native PKCS#11 3.2 post-quantum keys against a real PKCS#11 3.2 token: kryoptic (a Rust
//! soft token with ML-DSA and SLH-DSA), built by `cargo xtask kryoptic` into
//! `target/kryoptic/libkryoptic_pkcs11.so` (or named by `FWSEAL_KRYOPTIC_MODULE`). Skipped with a
//! message when the library is absent, unless `FWSEAL_REQUIRE_JUDGES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use fwseal_crypto::{SignedMessage, Signer};
use fwseal_hsm::keys::{self, ClassicalKind, PqMode, Role};
use fwseal_hsm::{HsmError, HsmSigner, Pin, PinSource, ProductId, Token, TokenConfig};
use std::path::PathBuf;
use std::sync::OnceLock;

fn module() -> Option<PathBuf> {
    let p = std::env::var_os("FWSEAL_KRYOPTIC_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/kryoptic/libkryoptic_pkcs11.so")
        });
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() == Ok("1") {
        panic!(
            "{} missing (FWSEAL_REQUIRE_JUDGES=1): run `cargo xtask kryoptic`",
            p.display()
        );
    }
    eprintln!("SKIP: no kryoptic PKCS#11 3.2 module at {}", p.display());
    None
}

const LABEL: &str = "fwseal-native";
const USER_PIN: &str = "native-user-pin";

/// One kryoptic token (sqlite storage under target/tmp) per test process, initialised through
/// PKCS#11 (C_InitToken, C_InitPIN) and opened by label like any production token.
fn token() -> Option<&'static Token> {
    static T: OnceLock<Option<Token>> = OnceLock::new();
    T.get_or_init(|| {
        let module = module()?;
        let dir = tempfile::Builder::new()
            .prefix("kryoptic-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        let conf = dir.join("kryoptic.conf");
        std::fs::write(
            &conf,
            format!(
                "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
                dir.join("token.sql").display()
            ),
        )
        .unwrap();
        // Process-global, before the module is loaded.
        std::env::set_var("KRYOPTIC_CONF", &conf);
        let p = Pkcs11::new(&module).expect("load kryoptic");
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        let slot = *p.get_slots_with_token().unwrap().first().expect("a slot");
        let so = AuthPin::new("native-so-pin".into());
        p.init_token(slot, &so, LABEL).expect("C_InitToken");
        let s = p.open_rw_session(slot).unwrap();
        s.login(UserType::So, Some(&so)).unwrap();
        s.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
        s.logout().unwrap();
        drop(s);
        // fwseal-hsm loads the module itself (once per process); this handle stays unused.
        std::mem::forget(p);
        let cfg = TokenConfig {
            module,
            label: LABEL.into(),
            user_pin: PinSource::Value(Pin::new(USER_PIN)),
            pool_size: 2,
            max_sessions: TokenConfig::DEFAULT_MAX_SESSIONS,
            session_wait: TokenConfig::DEFAULT_SESSION_WAIT,
            retries: TokenConfig::DEFAULT_RETRIES,
        };
        Some(Token::open(&cfg).expect("open kryoptic token by label"))
    })
    .as_ref()
}

fn product(s: &str) -> ProductId {
    ProductId::new(s).unwrap()
}

fn msg(tag: &str) -> SignedMessage {
    SignedMessage::Bytes(format!("fwseal/sigblock/v1/raw\0{tag}").into_bytes())
}

#[test]
fn native_pq_keys_are_generated_in_the_token_and_sign_pure_empty_context() {
    let Some(t) = token() else { return };
    let algs = [
        fwseal_crypto::SigAlg::MlDsa44,
        fwseal_crypto::SigAlg::MlDsa65,
        fwseal_crypto::SigAlg::MlDsa87,
        fwseal_crypto::SigAlg::SlhDsaSha2_128s,
        fwseal_crypto::SigAlg::SlhDsaSha2_128f,
    ];
    let p = product("native");
    for (i, alg) in algs.into_iter().enumerate() {
        assert!(
            t.supports_native(alg),
            "{alg}: kryoptic should implement it"
        );
        assert_eq!(PqMode::best_for(t, alg), PqMode::Native);
        let v = u32::try_from(i).unwrap() + 1;
        let pk = keys::create_pq(
            t,
            &p,
            v,
            alg,
            PqMode::Native,
            fwseal_crypto::provider::default_provider(),
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        // The private half is sensitive, not extractable, private.
        let prot = keys::protection(t, &p, v, Role::PqNative).expect("attributes");
        assert!(
            prot.sensitive && !prot.extractable && prot.private,
            "{alg}: {prot:?}"
        );
        let signer = HsmSigner::open(t, &p, v, alg).expect("open");
        assert_eq!(signer.public_key().key_id(), pk.key_id());
        assert!(!signer.in_process_private_material());
        let m = msg(alg.name());
        let sig = signer.sign(&m).expect("sign in the token");
        // fwseal's verifier (FIPS 204/205, pure, empty context) accepts it...
        pk.verify(&m, &sig).expect("verifies");
        // ...and not for another message.
        assert!(pk.verify(&msg("other"), &sig).is_err());
    }
}

#[test]
fn native_ml_dsa_signatures_verify_with_pyca() {
    let Some(t) = token() else { return };
    let Some(py) = which("python3") else { return };
    let p = product("native-pyca");
    let alg = fwseal_crypto::SigAlg::MlDsa65;
    let pk = keys::create_pq(
        t,
        &p,
        1,
        alg,
        PqMode::Native,
        fwseal_crypto::provider::default_provider(),
    )
    .unwrap();
    let signer = HsmSigner::open(t, &p, 1, alg).unwrap();
    let SignedMessage::Bytes(m) = msg("pyca") else {
        unreachable!()
    };
    let sig = signer.sign(&SignedMessage::Bytes(m.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pk.der"), pk.spki_der()).unwrap();
    std::fs::write(dir.path().join("m"), &m).unwrap();
    std::fs::write(dir.path().join("sig"), &sig.bytes).unwrap();
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(
            "from cryptography.hazmat.primitives import serialization as s\n\
             k=s.load_der_public_key(open('pk.der','rb').read())\n\
             k.verify(open('sig','rb').read(), open('m','rb').read())\n\
             print('ok')",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "pyca rejected a native ML-DSA-65 signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn native_keys_are_isolated_per_product_and_rotate() {
    let Some(t) = token() else { return };
    let alg = fwseal_crypto::SigAlg::MlDsa44;
    let (a, b) = (product("native-a"), product("native-b"));
    let pa = keys::create_pq(
        t,
        &a,
        1,
        alg,
        PqMode::Native,
        fwseal_crypto::provider::default_provider(),
    )
    .unwrap();
    // Product B has no key: opening it does not find A's.
    assert!(matches!(
        HsmSigner::open(t, &b, 1, alg),
        Err(HsmError::KeyNotFound { .. })
    ));
    let pa2 = keys::create_pq(
        t,
        &a,
        2,
        alg,
        PqMode::Native,
        fwseal_crypto::provider::default_provider(),
    )
    .unwrap();
    assert_ne!(pa.key_id(), pa2.key_id());
    // Version 1 still signs and verifies after rotation; a second v1 is refused.
    let s1 = HsmSigner::open(t, &a, 1, alg).unwrap();
    pa.verify(&msg("v1"), &s1.sign(&msg("v1")).unwrap())
        .unwrap();
    assert!(matches!(
        keys::create_pq(
            t,
            &a,
            1,
            alg,
            PqMode::Native,
            fwseal_crypto::provider::default_provider()
        ),
        Err(HsmError::KeyExists { .. })
    ));
    // Opening a version with the wrong parameter set is refused.
    assert!(matches!(
        HsmSigner::open(t, &a, 1, fwseal_crypto::SigAlg::MlDsa65),
        Err(HsmError::WrongKeyType { .. })
    ));
    // Hybrid on one token: the classical half in the same token, if it implements ECDSA.
    if let Ok(ec) = keys::create_classical(
        t,
        &a,
        1,
        fwseal_crypto::SigAlg::EcdsaP256Sha256,
        ClassicalKind::P256,
    ) {
        let s = HsmSigner::open(t, &a, 1, fwseal_crypto::SigAlg::EcdsaP256Sha256).unwrap();
        let m = SignedMessage::Prehashed {
            alg: fwseal_crypto::DigestAlg::Sha256,
            digest: vec![7; 32],
        };
        ec.verify(&m, &s.sign(&m).unwrap()).unwrap();
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(tool))
        .find(|p| p.is_file())
}
