//! The shipped unit file is hardened: `systemd-analyze security --offline=true` rates its
//! exposure 2.0 or lower, and it is a Type=notify service (fwseald sends READY=1).

use std::path::Path;
use std::process::Command;

#[test]
fn unit_exposure_is_at_most_2_0() {
    let have = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("systemd-analyze").is_file()));
    if !have {
        assert!(
            std::env::var("FWSEAL_REQUIRE_JUDGES").as_deref() != Ok("1"),
            "systemd-analyze is not installed"
        );
        eprintln!("SKIP: systemd-analyze not installed");
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/fwseald.service");
    let text = std::fs::read_to_string(&unit).expect("unit file");
    assert!(
        text.contains("Type=notify"),
        "fwseald.service must be Type=notify"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{s}"));
    let level: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    assert!(level <= 2.0, "exposure {level} > 2.0: {line}");
}
