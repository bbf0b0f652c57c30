//! The unit syntaxes of configtx.yaml and of config values: Go durations (`BatchTimeout: 2s`,
//! stored in the config as Go's `Duration.String()`, e.g. `"250ms"`, `"1m30s"`) and Fabric's
//! byte sizes (`AbsoluteMaxBytes: 99 MB`: a whole number, optional spaces, `K`/`M`/`G` in any
//! case with an optional `B`, binary multiples, at most `u32::MAX`). Also the time window of
//! signed requests ([`check_time_window`]).

use std::time::Duration;

/// A signed request's timestamp (`seconds`, `nanos` since the Unix epoch, as in a channel
/// header) must be within `window` of this node's clock, as Fabric's Deliver checks it, so a
/// captured request cannot be replayed later. `setting` names the config key of the window.
pub fn check_time_window(
    timestamp: Option<(i64, i32)>,
    window: Duration,
    setting: &str,
) -> Result<(), String> {
    let (seconds, nanos) = timestamp.ok_or("the channel header has no timestamp")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let then = Duration::new(
        u64::try_from(seconds).unwrap_or(0),
        u32::try_from(nanos).unwrap_or(0).min(999_999_999),
    );
    let skew = now.abs_diff(then);
    if skew > window {
        return Err(format!(
            "the request's timestamp is {skew:?} away from this node's clock, more than {setting} ({window:?}); check the client's clock"
        ));
    }
    Ok(())
}

/// Parse a Go duration: a sequence of decimal numbers, each with a unit (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`), e.g. `2s`, `250ms`, `1.5s`, `1m30s`. `0` alone is zero. Negative
/// durations are refused (no config value may be negative).
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration; write e.g. '2s' or '250ms'".to_owned());
    }
    if s.starts_with('-') {
        return Err(format!("'{text}' is negative; a duration must be positive"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut rest = s;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!(
                "'{text}' is not a duration; write a number and a unit, e.g. '2s' or '250ms'"
            ));
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "'{text}' has a number without a unit; add one of ns, us, ms, s, m, h"
                ))
            }
            other => {
                return Err(format!(
                    "'{text}' has an unknown unit '{other}'; use ns, us, ms, s, m or h"
                ))
            }
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("'{text}' is out of range"))?
        };
        let mut nanos = whole
            .checked_mul(scale)
            .ok_or_else(|| format!("'{text}' is out of range"))?;
        // Fraction digits beyond nanosecond precision are dropped, as Go does.
        let mut frac_scale = scale;
        for d in frac.chars().filter_map(|c| c.to_digit(10)) {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            nanos += u128::from(d) * frac_scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .filter(|n| *n <= i64::MAX as u128)
            .ok_or_else(|| format!("'{text}' is out of range (Go durations stop at ~292 years)"))?;
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Go's `time.Duration.String()`: `"0s"`, `"250ms"`, `"2s"`, `"1.5s"`, `"1m30s"`, `"2h0m0s"`.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos().min(i64::MAX as u128) as u64;
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        // Sub-second: the largest unit that keeps the whole part non-zero, with a fraction.
        let (unit, scale) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, scale));
    }
    let secs_part = nanos % 60_000_000_000;
    let total_minutes = nanos / 60_000_000_000;
    let secs = fraction(secs_part, 1_000_000_000);
    if total_minutes == 0 {
        return format!("{secs}s");
    }
    let hours = total_minutes / 60;
    let minutes = total_minutes % 60;
    if hours == 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{hours}h{minutes}m{secs}s")
    }
}

/// `value / scale` with the fraction's trailing zeros removed (`1500, 1000` -> `"1.5"`).
fn fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parse Fabric's byte size syntax: `"99 MB"`, `"512 KB"`, `"10m"`, `"1048576"`.
pub fn parse_byte_size(text: &str) -> Result<u32, String> {
    let s = text.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let unit = unit.trim_start();
    if number.is_empty() {
        return Err(format!(
            "'{text}' is not a byte size; write e.g. '99 MB', '512 KB' or a number of bytes"
        ));
    }
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{unit}'; use KB, MB or GB (binary multiples) or a plain number of bytes"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' overflows a 32-bit byte count"))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .filter(|b| *b <= u64::from(u32::MAX))
        .ok_or_else(|| format!("'{text}' overflows a 32-bit byte count (at most 4 GB - 1)"))?;
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations_round_trip_like_go() {
        for (text, ms) in [
            ("2s", 2000),
            ("250ms", 250),
            ("1.5s", 1500),
            ("1m30s", 90_000),
            ("2h0m0s", 7_200_000),
        ] {
            let d = parse_go_duration(text).unwrap();
            assert_eq!(d, Duration::from_millis(ms), "{text}");
            assert_eq!(format_go_duration(d), text);
        }
        assert_eq!(format_go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_go_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert!(parse_go_duration("2").is_err());
        assert!(parse_go_duration("2 parsecs").is_err());
        assert!(parse_go_duration("-1s").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("1.2.3s").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("99 MB").unwrap(), 99 * 1024 * 1024);
        assert_eq!(parse_byte_size("512 KB").unwrap(), 512 * 1024);
        assert_eq!(parse_byte_size("10m").unwrap(), 10 * 1024 * 1024);
        assert_eq!(parse_byte_size("1048576").unwrap(), 1_048_576);
        assert!(parse_byte_size("4 GB").is_err());
        assert!(parse_byte_size("10 MiB").is_err());
        assert!(parse_byte_size("lots").is_err());
    }
}
