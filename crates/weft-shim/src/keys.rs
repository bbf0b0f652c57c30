//! Composite keys, in Fabric's encoding: `\u{0}` + object type + `\u{0}` + each attribute +
//! `\u{0}`. Simple keys may not start with `\u{0}`, which keeps the two namespaces apart.

use crate::ChaincodeError;

pub(crate) const COMPOSITE_NS: char = '\u{0}';
pub(crate) const MAX_RUNE: char = '\u{10FFFF}';
/// What Fabric substitutes for an empty range start key.
pub(crate) const EMPTY_KEY_SUBSTITUTE: &str = "\u{1}";

fn check_part(part: &str, what: &str) -> Result<(), ChaincodeError> {
    if let Some(c) = part.chars().find(|c| *c == COMPOSITE_NS || *c == MAX_RUNE) {
        return Err(ChaincodeError::InvalidArgument(format!(
            "{what} {part:?} contains U+{:04X}, which composite keys reserve",
            c as u32
        )));
    }
    Ok(())
}

/// Build a composite key from an object type and attributes.
pub fn create_composite_key(
    object_type: &str,
    attributes: &[&str],
) -> Result<String, ChaincodeError> {
    check_part(object_type, "object type")?;
    let mut key = String::with_capacity(
        2 + object_type.len() + attributes.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    key.push(COMPOSITE_NS);
    key.push_str(object_type);
    key.push(COMPOSITE_NS);
    for attr in attributes {
        check_part(attr, "attribute")?;
        key.push_str(attr);
        key.push(COMPOSITE_NS);
    }
    Ok(key)
}

/// Split a composite key into its object type and attributes.
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), ChaincodeError> {
    let rest = key.strip_prefix(COMPOSITE_NS).ok_or_else(|| {
        ChaincodeError::InvalidArgument(format!(
            "{key:?} is not a composite key (no leading U+0000)"
        ))
    })?;
    let mut parts: Vec<String> = rest.split(COMPOSITE_NS).map(str::to_owned).collect();
    // A well-formed key ends with the separator, leaving one empty trailing part.
    if parts.last().is_some_and(String::is_empty) {
        parts.pop();
    }
    if parts.is_empty() {
        return Err(ChaincodeError::InvalidArgument(format!(
            "{key:?} has no object type"
        )));
    }
    let object_type = parts.remove(0);
    Ok((object_type, parts))
}

/// Simple keys must not use the composite-key namespace.
pub(crate) fn check_simple_key(key: &str) -> Result<(), ChaincodeError> {
    if key.starts_with(COMPOSITE_NS) {
        return Err(ChaincodeError::InvalidArgument(format!(
            "key {key:?} starts with U+0000, which is reserved for composite keys; use the composite-key functions"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_keys_round_trip_in_fabrics_encoding() {
        let k = create_composite_key("asset", &["blue", "5"]).unwrap();
        assert_eq!(k, "\u{0}asset\u{0}blue\u{0}5\u{0}");
        assert_eq!(
            split_composite_key(&k).unwrap(),
            ("asset".into(), vec!["blue".into(), "5".into()])
        );
        assert_eq!(
            create_composite_key("asset", &[]).unwrap(),
            "\u{0}asset\u{0}"
        );
        assert_eq!(
            split_composite_key("\u{0}asset\u{0}").unwrap(),
            ("asset".into(), vec![])
        );
    }

    #[test]
    fn reserved_runes_and_namespaces_are_refused() {
        assert!(create_composite_key("a\u{0}b", &[]).is_err());
        assert!(create_composite_key("a", &["x\u{10FFFF}"]).is_err());
        assert!(split_composite_key("plain").is_err());
        assert!(check_simple_key("\u{0}x").is_err());
        assert!(check_simple_key("x").is_ok());
    }
}
