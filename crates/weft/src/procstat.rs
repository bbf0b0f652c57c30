//! Reading `/proc/<pid>/stat` (Linux), for `weft up`/`weft down` (is a recorded process still
//! the one we started?) and `weft bench` (CPU time, parent processes).
//!
//! The line is `pid (comm) state ppid ...`: the command name may hold spaces and parentheses,
//! so every field after it is counted from the last `)`.

/// The stat line of a live process (`None` when it is gone or this is not Linux).
pub fn read(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// Field `n` of a stat line, numbered as in proc(5) (3 = state, 4 = ppid, 14 = utime,
/// 22 = starttime); `None` for fields 1 and 2 (see [`pid_and_comm`]) and missing ones.
pub fn field(stat: &str, n: usize) -> Option<&str> {
    let skip = n.checked_sub(3)?;
    let close = stat.rfind(')')?;
    stat.get(close + 1..)?.split_whitespace().nth(skip)
}

/// Field `n` parsed as a number.
pub fn number(stat: &str, n: usize) -> Option<u64> {
    field(stat, n)?.parse().ok()
}

/// Fields 1 and 2: the process id and the command name.
pub fn pid_and_comm(stat: &str) -> Option<(u32, &str)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat.get(..open)?.trim().parse().ok()?;
    Some((pid, stat.get(open + 1..close)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_are_counted_after_the_command_name() {
        let stat = "77 (a (b) c) S 76 77 77 0 -1 4194560 2211 0 3 0 150 25 0 0 20 0 9 0 4242 1";
        assert_eq!(pid_and_comm(stat), Some((77, "a (b) c")));
        assert_eq!(field(stat, 3), Some("S"));
        assert_eq!(number(stat, 4), Some(76));
        assert_eq!(number(stat, 14), Some(150));
        assert_eq!(number(stat, 22), Some(4242));
        assert_eq!(field(stat, 2), None);
        assert_eq!(field(stat, 99), None);
        assert_eq!(pid_and_comm("garbage"), None);
        assert!(read(std::process::id())
            .and_then(|s| number(&s, 22))
            .is_some());
    }
}
