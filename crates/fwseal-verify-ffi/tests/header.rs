//! `include/fwseal_verify.h` is hand-written; this test keeps it equal to the Rust side:
//! every status code and its reason string, the format / require / key-kind / algorithm
//! numbers, the context sizes, and the struct layouts (compiled with gcc and compared with
//! `offset_of!`).

use fwseal_verify::{Alg, Reason};
use fwseal_verify_ffi as ffi;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::Path;
use std::process::Command;

fn header() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/fwseal_verify.h"))
        .expect("read header")
}

/// `NAME = VALUE` enumerators and `#define NAME VALUE` lines (decimal or hex; `u` suffix ok),
/// with the first `"…"` of the line's comment.
fn constants(h: &str) -> BTreeMap<String, (i64, Option<String>)> {
    let mut out = BTreeMap::new();
    for line in h.lines() {
        let t = line.trim();
        let (name, rest) = if let Some(d) = t.strip_prefix("#define ") {
            match d.split_once(' ') {
                Some((n, r)) => (n, r.trim()),
                None => continue,
            }
        } else if let Some((n, r)) = t.split_once(" = ") {
            (n.trim(), r)
        } else {
            continue;
        };
        if !name.starts_with("FWSEAL_VERIFY_") || name.contains('(') {
            continue;
        }
        let num: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let num = num.trim_end_matches('u');
        let value = if let Some(hex) = num.strip_prefix("0x") {
            i64::from_str_radix(hex, 16)
        } else {
            num.parse()
        };
        let Ok(value) = value else { continue };
        let quoted = rest
            .split_once('"')
            .and_then(|(_, r)| r.split_once('"'))
            .map(|(q, _)| q.to_string());
        // CTX_SIZE appears four times (per target); keep all under numbered names
        let mut key = name.to_string();
        let mut i = 1;
        while out.contains_key(&key) {
            i += 1;
            key = format!("{name}#{i}");
        }
        out.insert(key, (value, quoted));
    }
    out
}

fn reason_str(st: i32) -> String {
    let p = ffi::fwseal_verify_reason_str(st);
    #[allow(unsafe_code)]
    // SAFETY: fwseal_verify_reason_str returns a pointer to a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().expect("utf-8").to_string()
}

#[test]
fn status_codes_and_reason_strings_match_fwseal_verify() {
    let c = constants(&header());
    let codes: Vec<(&String, &(i64, Option<String>))> = c
        .iter()
        .filter(|(n, _)| n.starts_with("FWSEAL_VERIFY_E_") || *n == "FWSEAL_VERIFY_OK")
        .collect();
    assert!(codes.len() >= 24, "header status codes: {codes:?}");
    for (name, (value, quoted)) in &codes {
        let s = reason_str(*value as i32);
        assert_eq!(
            Some(&s),
            quoted.as_ref(),
            "{name} = {value}: the header says {quoted:?}, the library {s:?}"
        );
    }
    for r in Reason::ALL {
        let st = ffi::status_of(r);
        assert_eq!(reason_str(st), r.code(), "{r:?}");
        let name = format!(
            "FWSEAL_VERIFY_{}{}",
            if r == Reason::Ok { "" } else { "E_" },
            r.code().to_uppercase().replace('-', "_")
        );
        assert_eq!(
            c.get(&name).map(|v| v.0),
            Some(i64::from(st)),
            "{name} missing or different in the header"
        );
    }
    // distinct numbers
    let mut seen: Vec<i64> = codes.iter().map(|(_, v)| v.0).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), codes.len(), "duplicate status numbers");
    assert_eq!(reason_str(-1), "unknown");
    assert_eq!(reason_str(99), "unknown");
}

#[test]
fn enum_values_match() {
    let c = constants(&header());
    let get = |n: &str| c.get(n).unwrap_or_else(|| panic!("{n} not in header")).0;
    for a in Alg::ALL {
        let name = format!(
            "FWSEAL_VERIFY_ALG_{}",
            a.name().to_uppercase().replace('-', "_")
        );
        assert_eq!(get(&name), i64::from(a.id()), "{name}");
    }
    for (id, f) in ffi::FORMATS {
        let name = format!("FWSEAL_VERIFY_FORMAT_{}", f.name().to_uppercase());
        assert_eq!(get(&name), i64::from(id), "{name}");
    }
    for (id, name) in [(0, "BOTH"), (1, "PQ"), (2, "CLASSICAL")] {
        assert_eq!(get(&format!("FWSEAL_VERIFY_REQUIRE_{name}")), id);
        assert!(ffi::REQUIRES.iter().any(|(i, _)| i64::from(*i) == id));
    }
    assert_eq!(
        get("FWSEAL_VERIFY_KEY_SPKI"),
        i64::from(ffi::FWSEAL_VERIFY_KEY_SPKI)
    );
    assert_eq!(
        get("FWSEAL_VERIFY_KEY_RAW"),
        i64::from(ffi::FWSEAL_VERIFY_KEY_RAW)
    );
    assert_eq!(
        get("FWSEAL_VERIFY_HALF_CLASSICAL"),
        i64::from(ffi::FWSEAL_VERIFY_HALF_CLASSICAL)
    );
    assert_eq!(
        get("FWSEAL_VERIFY_HALF_PQ"),
        i64::from(ffi::FWSEAL_VERIFY_HALF_PQ)
    );
    assert_eq!(
        get("FWSEAL_VERIFY_MAX_KEYS"),
        ffi::FWSEAL_VERIFY_MAX_KEYS as i64
    );
    assert_eq!(
        get("FWSEAL_VERIFY_CTX_ALIGN"),
        ffi::FWSEAL_VERIFY_CTX_ALIGN as i64
    );
    // the four context sizes, in header order: 64-bit without/with SLH-DSA, 32-bit without/with
    let sizes = [
        get("FWSEAL_VERIFY_CTX_SIZE"),
        get("FWSEAL_VERIFY_CTX_SIZE#2"),
        get("FWSEAL_VERIFY_CTX_SIZE#3"),
        get("FWSEAL_VERIFY_CTX_SIZE#4"),
    ];
    assert_eq!(
        sizes,
        [
            ffi::CTX_SIZE_64 as i64,
            ffi::CTX_SIZE_64_SLH as i64,
            ffi::CTX_SIZE_32 as i64,
            ffi::CTX_SIZE_32_SLH as i64
        ]
    );
    assert_eq!(
        ffi::fwseal_verify_ctx_size(),
        ffi::FWSEAL_VERIFY_CTX_SIZE,
        "the library's context size"
    );
}

#[test]
fn struct_layouts_match_gcc() {
    use std::mem::{offset_of, size_of};
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("layout.c");
    let fields = [
        "image_range_start",
        "covered_len",
        "halves",
        "signatures",
        "has_security_counter",
        "security_counter",
        "has_version",
        "version_major",
        "version_minor",
        "version_revision",
        "version_build",
        "has_image_range",
        "classical_alg",
        "pq_alg",
        "classical_key_id",
        "pq_key_id",
        "product_len",
        "product",
    ];
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"fwseal_verify.h\"\nint main(void) {\n",
    );
    c += "printf(\"ctx %zu %zu\\n\", sizeof(fwseal_verify_ctx), _Alignof(fwseal_verify_ctx));\n";
    c += "printf(\"policy %zu %zu\\n\", sizeof(fwseal_verify_policy), offsetof(fwseal_verify_policy, min_security_counter));\n";
    c += "printf(\"key %zu %zu %zu %zu\\n\", sizeof(fwseal_verify_key), offsetof(fwseal_verify_key, alg), offsetof(fwseal_verify_key, data), offsetof(fwseal_verify_key, len));\n";
    c += "printf(\"details %zu\\n\", sizeof(fwseal_verify_details));\n";
    for f in fields {
        c += &format!("printf(\"{f} %zu\\n\", offsetof(fwseal_verify_details, {f}));\n");
    }
    c += "return 0;\n}\n";
    std::fs::write(&src, c).expect("write");
    let exe = dir.path().join("layout");
    let o = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc is required");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = Command::new(&exe).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let got: BTreeMap<&str, Vec<usize>> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let k = it.next()?;
            Some((k, it.map(|v| v.parse().expect("num")).collect()))
        })
        .collect();
    type D = ffi::fwseal_verify_details;
    type K = ffi::fwseal_verify_key;
    type P = ffi::fwseal_verify_policy;
    assert_eq!(
        got["ctx"],
        [
            size_of::<ffi::fwseal_verify_ctx>(),
            std::mem::align_of::<ffi::fwseal_verify_ctx>()
        ]
    );
    assert_eq!(
        got["policy"],
        [size_of::<P>(), offset_of!(P, min_security_counter)]
    );
    assert_eq!(
        got["key"],
        [
            size_of::<K>(),
            offset_of!(K, alg),
            offset_of!(K, data),
            offset_of!(K, len)
        ]
    );
    assert_eq!(got["details"], [size_of::<D>()]);
    let rust = [
        offset_of!(D, image_range_start),
        offset_of!(D, covered_len),
        offset_of!(D, halves),
        offset_of!(D, signatures),
        offset_of!(D, has_security_counter),
        offset_of!(D, security_counter),
        offset_of!(D, has_version),
        offset_of!(D, version_major),
        offset_of!(D, version_minor),
        offset_of!(D, version_revision),
        offset_of!(D, version_build),
        offset_of!(D, has_image_range),
        offset_of!(D, classical_alg),
        offset_of!(D, pq_alg),
        offset_of!(D, classical_key_id),
        offset_of!(D, pq_key_id),
        offset_of!(D, product_len),
        offset_of!(D, product),
    ];
    for (f, off) in fields.iter().zip(rust) {
        assert_eq!(got[f], [off], "fwseal_verify_details.{f}");
    }
}
