//! The one file-naming rule for an image and its companion files, used by `sign` (and
//! `sign --hash-locally`), `fetch` and `verify` (documented in `formats/provenance.md`,
//! "File names", and the README).
//!
//! An image file `X` — the file that is flashed or checked: the signed image in embedded mode,
//! the unchanged image in detached mode — has at most two companions, named after it:
//!
//! - `X.sig.json`: the detached signature document for `X` (detached mode; embedded `.efi`,
//!   whose PQ half cannot be embedded);
//! - `X.intoto.jsonl`: the provenance envelope for `X`.
//!
//! A detached document given under another name `D` (`sign --detached -o D`, `verify
//! --detached D`) names its own provenance: `D` with a trailing `.sig.json` replaced by
//! `.intoto.jsonl` (appended when `D` has no such suffix), so `X.sig.json` and `X` agree.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Suffix of a detached signature document.
pub const DETACHED_SUFFIX: &str = ".sig.json";
/// Suffix of a provenance envelope.
pub const PROVENANCE_SUFFIX: &str = ".intoto.jsonl";
/// Suffix of a bundle (`fwseal sign --bundle`).
pub const BUNDLE_SUFFIX: &str = ".bundle.json";

fn suffixed(p: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `X.sig.json`: the detached document of image `X`.
pub fn detached_for(image: &Path) -> PathBuf {
    suffixed(image, DETACHED_SUFFIX)
}

/// `X.intoto.jsonl`: the provenance of image `X`.
pub fn provenance_for(image: &Path) -> PathBuf {
    suffixed(image, PROVENANCE_SUFFIX)
}

/// `X.bundle.json`: the bundle (`fwseal sign --bundle`) of image `X`.
pub fn bundle_for(image: &Path) -> PathBuf {
    suffixed(image, BUNDLE_SUFFIX)
}

/// The image a detached document `D` names: `X` for `X.sig.json`, else `D` itself.
fn image_of_detached(doc: &Path) -> &Path {
    match doc
        .to_str()
        .and_then(|s| s.strip_suffix(DETACHED_SUFFIX))
        .filter(|stem| !stem.is_empty() && !stem.ends_with('/'))
    {
        Some(stem) => Path::new(stem),
        None => doc,
    }
}

/// The provenance that goes with a detached document `D`: for `X.sig.json`, `X.intoto.jsonl`
/// (the same file as [`provenance_for`] of the image); otherwise `D.intoto.jsonl`.
pub fn provenance_for_detached(doc: &Path) -> PathBuf {
    provenance_for(image_of_detached(doc))
}

/// The bundle that goes with a detached document `D`: for `X.sig.json`, `X.bundle.json`;
/// otherwise `D.bundle.json`.
pub fn bundle_for_detached(doc: &Path) -> PathBuf {
    bundle_for(image_of_detached(doc))
}

/// The signed image's name for input `X` in embedded mode: `stem.signed.ext` (`stem.signed`
/// without an extension), in the same directory.
pub fn signed_image_for(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let name = match input.extension() {
        Some(e) => format!("{stem}.signed.{}", e.to_string_lossy()),
        None => format!("{stem}.signed"),
    };
    input.with_file_name(name)
}

/// A server-supplied input name usable as a plain file name in the output directory: its last
/// path component, if that is a normal, printable name. `None` for anything else (a name with
/// directory parts reduced to nothing, `..`, control characters, or over 255 bytes).
pub fn safe_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next()?;
    let ok = !last.is_empty()
        && last != "."
        && last != ".."
        && last.len() <= 255
        && !last.chars().any(|c| c.is_control());
    ok.then(|| last.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_are_named_after_the_image() {
        assert_eq!(
            detached_for(Path::new("a/fw.bin")),
            Path::new("a/fw.bin.sig.json")
        );
        assert_eq!(
            provenance_for(Path::new("a/fw.signed.img")),
            Path::new("a/fw.signed.img.intoto.jsonl")
        );
        // Detached mode: the document's provenance is the image's.
        let doc = detached_for(Path::new("a/fw.bin"));
        assert_eq!(
            provenance_for_detached(&doc),
            provenance_for(Path::new("a/fw.bin"))
        );
        assert_eq!(
            provenance_for_detached(Path::new("sigs.json")),
            Path::new("sigs.json.intoto.jsonl")
        );
        assert_eq!(
            provenance_for_detached(Path::new(".sig.json")),
            Path::new(".sig.json.intoto.jsonl")
        );
        assert_eq!(
            signed_image_for(Path::new("b/app.img")),
            Path::new("b/app.signed.img")
        );
        assert_eq!(signed_image_for(Path::new("app")), Path::new("app.signed"));
    }

    #[test]
    fn server_names_cannot_leave_the_directory() {
        assert_eq!(safe_file_name("app.img").as_deref(), Some("app.img"));
        assert_eq!(safe_file_name("../../etc/x.bin").as_deref(), Some("x.bin"));
        assert_eq!(safe_file_name("C:\\fw\\a.hex").as_deref(), Some("a.hex"));
        for bad in ["", "..", ".", "dir/", "a\nb", &"x".repeat(256)] {
            assert_eq!(safe_file_name(bad), None, "{bad:?}");
        }
    }
}
