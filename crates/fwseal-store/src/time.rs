//! The one timestamp shape the store accepts: RFC 3339 in UTC (`Z`), e.g.
//! `2026-05-01T12:00:00Z` or `2026-05-01T12:00:00.123Z`.
//!
//! Times are passed in by the caller (the store never reads the clock, which keeps it
//! deterministic and testable). Range queries need a total order, so each accepted time also
//! has a normalised sort key with nine fractional digits.

/// Check `s` is `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` with plausible field ranges and return its sort
/// key `YYYY-MM-DDTHH:MM:SS.fffffffffZ`. `None` if it is not of that shape.
pub fn utc_sort_key(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't')) && sep(13, b':'))
        || !sep(16, b':')
    {
        return None;
    }
    let (_y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let rest = s.get(19..)?;
    let frac = if let Some(r) = rest.strip_prefix('.') {
        let f = r.strip_suffix('Z').or_else(|| r.strip_suffix('z'))?;
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        f
    } else if rest == "Z" || rest == "z" {
        ""
    } else {
        return None;
    };
    let date_time = s.get(..19)?.replace('t', "T");
    Some(format!("{date_time}.{frac:0<9}Z"))
}

#[cfg(test)]
mod tests {
    use super::utc_sort_key;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(
            utc_sort_key("2026-05-01T12:00:00Z").as_deref(),
            Some("2026-05-01T12:00:00.000000000Z")
        );
        assert_eq!(
            utc_sort_key("2026-05-01T12:00:00.5Z").as_deref(),
            Some("2026-05-01T12:00:00.500000000Z")
        );
        // The sort key orders what plain string comparison would not.
        assert!(utc_sort_key("2026-05-01T12:00:00Z") < utc_sort_key("2026-05-01T12:00:00.5Z"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2026-05-01",
            "2026-05-01T12:00:00",
            "2026-05-01T12:00:00+02:00",
            "2026-13-01T12:00:00Z",
            "2026-05-01T24:00:00Z",
            "2026-05-01T12:00:00.Z",
            "2026-05-01T12:00:00.1234567890Z",
            "2026-05-01 12:00:00Z",
            "2026-05-01T12:00:00Zjunk",
            "２026-05-01T12:00:00Z",
        ] {
            assert!(utc_sort_key(bad).is_none(), "{bad}");
        }
    }
}
