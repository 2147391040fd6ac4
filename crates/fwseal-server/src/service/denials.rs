//! Bounded audit records for refusals, and anonymous denials aggregated per interval.
//!
//! Every refusal is audited, but what a client puts in a URL or a body is not stored as it came:
//! a product name that is not a valid one (the config's grammar, [`valid_product_name`]) is
//! recorded as its length, SHA-256 and a short sanitised prefix ([`requested_product`]), and a
//! reason is cut to [`MAX_REASON`] bytes ([`bounded_reason`]). A record therefore has a bounded
//! size whatever the request held.
//!
//! Unauthenticated requests (no token, or one that matches no client) cost an attacker nothing,
//! so they are not one durable row each: the first one of an interval is recorded in full (as
//! before), and the others of that interval are counted into one summary record (`denied`,
//! client `anonymous`) written when the interval ends — by the periodic flush
//! ([`super::SigningService::flush_denials`]), by the next anonymous denial after it ended, or at
//! shutdown. The summary carries the count, the first and last time, and a bounded sample:
//! up to [`MAX_SAMPLES`] distinct (action, product, reason) triples and up to [`MAX_SAMPLES`]
//! distinct sources (peer addresses, where the HTTP layer supplies them), each with its own count,
//! plus how many fell outside the sample. A sustained flood therefore adds two records per
//! interval; a crash loses at most the counts of the interval in progress (its first denial is
//! already durable).

use crate::config::valid_product_name;
use sha2::{Digest as _, Sha256};
use std::time::{Duration, Instant};

/// Longest reason stored in an audit record, bytes.
pub const MAX_REASON: usize = 512;
/// Most distinct samples (and, separately, sources) a summary lists.
pub const MAX_SAMPLES: usize = 16;
/// Characters of an invalid product name kept (sanitised) in its description.
const PREFIX_CHARS: usize = 32;

/// A product name as an audit record may hold it: a valid name (or `*`, "every product") as
/// is, anything else as `None` plus a bounded description.
pub(crate) fn requested_product(p: Option<&str>) -> (Option<String>, Option<serde_json::Value>) {
    match p {
        None | Some("") => (None, None),
        Some(p) if p == "*" || valid_product_name(p) => (Some(p.to_string()), None),
        Some(p) => (None, Some(describe(p))),
    }
}

/// `{"bytes": N, "sha256": "…", "prefix": "…"}`: enough to recognise and count a name without
/// storing it (the prefix keeps only `[a-z0-9._-]`, other characters become `?`).
fn describe(p: &str) -> serde_json::Value {
    let prefix: String = p
        .chars()
        .take(PREFIX_CHARS)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect();
    serde_json::json!({
        "bytes": p.len(),
        "sha256": hex::encode(Sha256::digest(p.as_bytes())),
        "prefix": prefix,
    })
}

/// `reason` cut to at most [`MAX_REASON`] bytes (at a character boundary), saying so.
pub(crate) fn bounded_reason(reason: String) -> String {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON.saturating_sub(40);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… (cut; {} bytes in all)",
        reason.get(..end).unwrap_or_default(),
        reason.len()
    )
}

/// One sampled kind of anonymous denial.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sample {
    action: String,
    product: Option<String>,
    /// The invalid product name's description's SHA-256 (distinguishes names without storing
    /// them).
    requested: Option<serde_json::Value>,
    reason: String,
    count: u64,
}

/// Anonymous denials of the interval in progress.
#[derive(Debug)]
struct Window {
    opened: Instant,
    /// Denials counted here (not recorded one by one).
    count: u64,
    first: Option<String>,
    last: Option<String>,
    samples: Vec<Sample>,
    unsampled: u64,
    sources: Vec<(String, u64)>,
    sources_other: u64,
}

/// What to do with one anonymous denial.
#[derive(Debug)]
pub(crate) enum Disposition {
    /// Record it in full; first write `summary` if it is `Some` (the previous interval's).
    Record { summary: Option<serde_json::Value> },
    /// Counted into the current interval's summary; nothing to write now.
    Counted,
}

/// The aggregator (one per service).
#[derive(Debug, Default)]
pub(crate) struct Denials {
    window: Option<Window>,
}

/// One anonymous denial as the aggregator sees it.
pub(crate) struct Anonymous<'a> {
    pub(crate) time: &'a str,
    pub(crate) action: &'a str,
    pub(crate) product: Option<&'a str>,
    pub(crate) reason: &'a str,
    pub(crate) source: Option<&'a str>,
}

impl Denials {
    /// Account for one anonymous denial at `now` with intervals of `interval` (zero: no
    /// aggregation, every denial is recorded).
    pub(crate) fn note(
        &mut self,
        d: &Anonymous<'_>,
        now: Instant,
        interval: Duration,
    ) -> Disposition {
        if interval.is_zero() {
            return Disposition::Record {
                summary: self.take(),
            };
        }
        match &mut self.window {
            Some(w) if now.duration_since(w.opened) < interval => {
                w.add(d);
                Disposition::Counted
            }
            _ => {
                let summary = self.take();
                self.window = Some(Window::new(now));
                Disposition::Record { summary }
            }
        }
    }

    /// The summary of the interval in progress if it has ended at `now` (or `force`), closing
    /// it. `None` when there is nothing to summarise.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        interval: Duration,
        force: bool,
    ) -> Option<serde_json::Value> {
        let ended = self
            .window
            .as_ref()
            .is_some_and(|w| force || now.duration_since(w.opened) >= interval);
        if ended {
            self.take()
        } else {
            None
        }
    }

    /// Close the window; its summary if it counted anything.
    fn take(&mut self) -> Option<serde_json::Value> {
        let w = self.window.take()?;
        (w.count > 0).then(|| w.summary())
    }
}

impl Window {
    fn new(opened: Instant) -> Self {
        Window {
            opened,
            count: 0,
            first: None,
            last: None,
            samples: Vec::new(),
            unsampled: 0,
            sources: Vec::new(),
            sources_other: 0,
        }
    }

    fn add(&mut self, d: &Anonymous<'_>) {
        self.count = self.count.saturating_add(1);
        if self.first.is_none() {
            self.first = Some(d.time.to_string());
        }
        self.last = Some(d.time.to_string());
        let (product, requested) = requested_product(d.product);
        let reason = bounded_reason(d.reason.to_string());
        let same = |s: &Sample| {
            s.action == d.action
                && s.product == product
                && s.requested == requested
                && s.reason == reason
        };
        if let Some(s) = self.samples.iter_mut().find(|s| same(s)) {
            s.count = s.count.saturating_add(1);
        } else if self.samples.len() < MAX_SAMPLES {
            self.samples.push(Sample {
                action: d.action.to_string(),
                product,
                requested,
                reason,
                count: 1,
            });
        } else {
            self.unsampled = self.unsampled.saturating_add(1);
        }
        if let Some(src) = d.source {
            if let Some(s) = self.sources.iter_mut().find(|(s, _)| s == src) {
                s.1 = s.1.saturating_add(1);
            } else if self.sources.len() < MAX_SAMPLES {
                let src: String = src.chars().take(64).collect();
                self.sources.push((src, 1));
            } else {
                self.sources_other = self.sources_other.saturating_add(1);
            }
        }
    }

    fn summary(&self) -> serde_json::Value {
        let samples: Vec<serde_json::Value> = self
            .samples
            .iter()
            .map(|s| {
                let mut v = serde_json::json!({
                    "action": s.action,
                    "reason": s.reason,
                    "count": s.count,
                });
                if let Some(p) = &s.product {
                    v["product"] = serde_json::json!(p);
                }
                if let Some(r) = &s.requested {
                    v["requested_product"] = r.clone();
                }
                v
            })
            .collect();
        let sources: Vec<serde_json::Value> = self
            .sources
            .iter()
            .map(|(s, n)| serde_json::json!({"source": s, "count": n}))
            .collect();
        serde_json::json!({
            "anonymous_denials": {
                "count": self.count,
                "first": self.first,
                "last": self.last,
                "samples": samples,
                "unsampled": self.unsampled,
                "sources": sources,
                "sources_unsampled": self.sources_other,
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn anon<'a>(product: &'a str, source: &'a str) -> Anonymous<'a> {
        Anonymous {
            time: "2026-05-01T12:00:00Z",
            action: "sign",
            product: Some(product),
            reason: "unauthenticated",
            source: Some(source),
        }
    }

    #[test]
    fn invalid_product_names_are_described_not_stored() {
        let long = "A".repeat(60_000);
        let (p, d) = requested_product(Some(&long));
        assert_eq!(p, None);
        let d = d.unwrap();
        assert_eq!(d["bytes"], 60_000);
        assert_eq!(d["prefix"], "?".repeat(PREFIX_CHARS));
        assert!(d.to_string().len() < 200);
        assert_eq!(
            requested_product(Some("widget")).0.as_deref(),
            Some("widget")
        );
        assert_eq!(requested_product(Some("*")).0.as_deref(), Some("*"));
        assert!(bounded_reason("é".repeat(10_000)).len() <= MAX_REASON);
        assert_eq!(bounded_reason("short".into()), "short");
    }

    #[test]
    fn one_record_then_one_bounded_summary_per_interval() {
        let mut d = Denials::default();
        let t0 = Instant::now();
        let i = Duration::from_secs(60);
        assert!(matches!(
            d.note(&anon("widget", "a"), t0, i),
            Disposition::Record { summary: None }
        ));
        for n in 0..1000 {
            let name = format!("p{n}");
            let src = format!("10.0.0.{n}");
            assert!(matches!(
                d.note(&anon(&name, &src), t0, i),
                Disposition::Counted
            ));
        }
        assert!(d.due(t0, i, false).is_none(), "interval not over");
        let s = d.due(t0 + i, i, false).unwrap();
        let a = &s["anonymous_denials"];
        assert_eq!(a["count"], 1000);
        assert_eq!(a["samples"].as_array().unwrap().len(), MAX_SAMPLES);
        assert_eq!(a["unsampled"], 1000 - MAX_SAMPLES as u64);
        assert_eq!(a["sources_unsampled"], 1000 - MAX_SAMPLES as u64);
        assert!(s.to_string().len() < 8 * 1024);
        assert!(d.due(t0 + i, i, true).is_none(), "closed");
        // The next denial opens a new interval and is recorded in full.
        assert!(matches!(
            d.note(&anon("widget", "a"), t0 + i, i),
            Disposition::Record { summary: None }
        ));
    }
}
