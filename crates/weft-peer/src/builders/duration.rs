//! Go durations as `connection.json`'s `dial_timeout` holds them (`10s`, `1m30s`, `500ms`):
//! the one parser the project uses, from `weft_configtx::units`, re-exported here for the
//! builders.

pub use weft_configtx::units::parse_go_duration;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
