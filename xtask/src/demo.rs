//! `cargo xtask demo` — filled in once the daemon exists.
use anyhow::Result;
use std::path::Path;

pub fn run(_root: &Path) -> Result<()> {
    anyhow::bail!("the demo needs fwseald, which is not built yet")
}
