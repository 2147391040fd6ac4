//! Temporary: the format descriptor calls the service uses, until fwseal-formats has them.
#![allow(missing_docs)]
use fwseal_crypto::SigAlg;
use fwseal_formats::{Format, Mode};

pub struct Spec {
    pub extensions: &'static [&'static str],
}

pub trait FormatExt {
    fn spec(self) -> Spec;
    fn classical_alg(self, c: SigAlg) -> SigAlg;
    fn output_name(self, name: &str, mode: Mode) -> String;
}

impl FormatExt for Format {
    fn spec(self) -> Spec {
        Spec {
            extensions: match self {
                Format::Ihex => &["hex"],
                Format::Efi => &["efi"],
                Format::Dfu => &["dfu"],
                _ => &["bin"],
            },
        }
    }
    fn classical_alg(self, c: SigAlg) -> SigAlg {
        match (c, self) {
            (SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256, Format::Mcuboot) => {
                SigAlg::RsaPssSha256
            }
            (SigAlg::RsaPkcs1Sha256 | SigAlg::RsaPssSha256, Format::Efi) => SigAlg::RsaPkcs1Sha256,
            (c, _) => c,
        }
    }
    fn output_name(self, name: &str, mode: Mode) -> String {
        match mode {
            Mode::Detached => name.to_string(),
            Mode::Embedded => match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.signed.{ext}"),
                None => format!("{name}.signed"),
            },
        }
    }
}
