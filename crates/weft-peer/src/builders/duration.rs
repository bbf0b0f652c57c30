//! Go's duration strings (`time.ParseDuration`), as written in `connection.json`.

use std::time::Duration;

/// Parses a Go duration string: a sequence of decimal numbers with optional fractions, each
/// with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), such as `10s`, `1m30s`, `500ms`,
/// `1.5h`; `0` alone is zero. Negative durations are refused. The error says what is wrong.
pub fn parse_go_duration(input: &str) -> Result<Duration, String> {
    let mut rest = input;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    } else if rest.starts_with('-') {
        return Err(format!(
            "{input:?} is negative; give a positive duration such as \"10s\""
        ));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("the duration is empty; write e.g. \"10s\"".to_owned());
    }
    // Go's limit: what fits in an int64 of nanoseconds (about 292 years).
    const MAX_NANOS: u128 = i64::MAX as u128;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_digits = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_digits = "";
        if let Some(r) = rest.strip_prefix('.') {
            let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_digits = &r[..frac_len];
            rest = &r[frac_len..];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(format!(
                "{input:?} is not a duration: expected a number; write e.g. \"10s\", \"1m30s\" or \"500ms\""
            ));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "{input:?} has a number without a unit; write e.g. \"10s\" (units: ns, us, ms, s, m, h)"
                ))
            }
            other => {
                return Err(format!(
                    "{input:?} has an unknown unit {other:?} (units: ns, us, ms, s, m, h)"
                ))
            }
        };
        let overflow = || format!("{input:?} is too long a duration");
        if int_digits.len() > 20 {
            return Err(overflow());
        }
        let int_value: u128 = if int_digits.is_empty() {
            0
        } else {
            int_digits.parse().map_err(|_| overflow())?
        };
        total = total
            .checked_add(int_value.checked_mul(per_unit).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        // Digits past nanosecond precision of the largest unit cannot matter.
        let frac_digits = &frac_digits[..frac_digits.len().min(20)];
        if !frac_digits.is_empty() {
            let frac_value: u128 = frac_digits.parse().map_err(|_| overflow())?;
            let scale = 10u128.pow(frac_digits.len() as u32);
            total = total
                .checked_add(frac_value * per_unit / scale)
                .ok_or_else(overflow)?;
        }
        if total > MAX_NANOS {
            return Err(overflow());
        }
    }
    u64::try_from(total)
        .map(Duration::from_nanos)
        .map_err(|_| format!("{input:?} is too long a duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_forms() {
        let ok = |s: &str| parse_go_duration(s).unwrap();
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1h2m3s4ms5us6ns"), Duration::new(3723, 4_005_006));
        assert_eq!(ok("3\u{b5}s"), Duration::from_micros(3));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("+2s"), Duration::from_secs(2));
        for bad in [
            "",
            "10",
            "s",
            "-1s",
            "1x",
            "1.s.",
            ".s",
            "99999999999999999999999h",
        ] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
