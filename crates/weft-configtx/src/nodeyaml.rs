//! Node configuration files as Fabric reads them: a YAML file (`core.yaml`, `orderer.yaml`)
//! whose keys a fixed set of environment variables may override (`CORE_PEER_TLS_ENABLED` for
//! `peer.tls.enabled`, `ORDERER_GENERAL_LISTENPORT` for `General.ListenPort`). Peers and
//! orderers share this loader; each deserializes and validates the result itself.
//!
//! Values from the environment are read as YAML scalars (`true`, `7051`); list keys take a
//! comma- or space-separated list, optionally in brackets (`[a.pem, b.pem]`). A key is matched
//! case-insensitively against the file's keys, since variable names lose camelCase.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

/// Why a node configuration file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlSourceError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {detail}")]
    Yaml { path: String, detail: String },
}

/// A configuration tree with its overrides applied.
#[derive(Debug)]
pub struct Loaded {
    pub value: Value,
    /// The file's directory (relative paths in the file resolve against it); `.` for defaults.
    pub base_dir: PathBuf,
    /// The file's path, or `defaults`, for messages.
    pub source: String,
}

/// The environment variable that overrides `key`: `<PREFIX>_<KEY WITH DOTS AS _>`, upper case.
pub fn env_name(prefix: &str, key: &str) -> String {
    format!("{prefix}_{}", key.replace('.', "_").to_uppercase())
}

/// Read `path` (an empty tree when `None`) and apply the overrides of `overridable` keys
/// (`(key, is_list)`) found with `env` under `prefix`.
pub fn load(
    path: Option<&Path>,
    prefix: &str,
    overridable: &[(&str, bool)],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Loaded, YamlSourceError> {
    let (mut value, base_dir, source) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| YamlSourceError::Read {
                path: p.to_owned(),
                source,
            })?;
            let value: Value =
                serde_norway::from_str(&text).map_err(|e| YamlSourceError::Yaml {
                    path: p.display().to_string(),
                    detail: e.to_string(),
                })?;
            let base = p.parent().map(Path::to_owned).unwrap_or_default();
            (value, base, p.display().to_string())
        }
        None => (
            Value::Mapping(Mapping::new()),
            PathBuf::from("."),
            "defaults".to_owned(),
        ),
    };
    if value.is_null() {
        value = Value::Mapping(Mapping::new());
    }
    for (key, is_list) in overridable {
        if let Some(raw) = env(&env_name(prefix, key)) {
            let v = if *is_list {
                list_value(&raw)
            } else {
                serde_norway::from_str::<Value>(&raw).unwrap_or(Value::String(raw.clone()))
            };
            set_path(&mut value, key, v);
        }
    }
    Ok(Loaded {
        value,
        base_dir,
        source,
    })
}

/// A list from an environment variable: `a,b`, `a b` or `[a, b]`.
pub fn list_value(raw: &str) -> Value {
    let trimmed = raw.trim().trim_start_matches('[').trim_end_matches(']');
    Value::Sequence(
        trimmed
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .collect(),
    )
}

/// Set `key` (dotted path) in `root` to `v`, creating mappings on the way and matching
/// existing keys case-insensitively (renamed to `key`'s spelling).
pub fn set_path(root: &mut Value, key: &str, v: Value) {
    let mut node = root;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(map) = node else { return };
        let existing = map
            .keys()
            .find(|k| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(part)))
            .cloned();
        // Variable names lose case: a key spelled differently in the file is renamed to the
        // canonical spelling, which is what the configuration types read.
        let k = match existing {
            Some(k) if k.as_str() == Some(part) => k,
            Some(other) => {
                let old = map.remove(&other).unwrap_or(Value::Null);
                let k = Value::String((*part).to_owned());
                map.insert(k.clone(), old);
                k
            }
            None => Value::String((*part).to_owned()),
        };
        if i == parts.len() - 1 {
            map.insert(k, v);
            return;
        }
        node = map.entry(k).or_insert(Value::Mapping(Mapping::new()));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn overrides_match_keys_case_insensitively_and_read_lists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core.yaml");
        std::fs::write(&path, "peer:\n  tls:\n    enabled: false\n").unwrap();
        let env = |k: &str| match k {
            "CORE_PEER_TLS_ENABLED" => Some("true".to_owned()),
            "CORE_PEER_TLS_CLIENTROOTCAS_FILES" => Some("[a.pem, b.pem]".to_owned()),
            _ => None,
        };
        let l = load(
            Some(&path),
            "CORE",
            &[
                ("peer.tls.enabled", false),
                ("peer.tls.clientRootCAs.files", true),
            ],
            env,
        )
        .unwrap();
        assert_eq!(l.base_dir, dir.path());
        let tls = &l.value["peer"]["tls"];
        assert_eq!(tls["enabled"], Value::Bool(true));
        assert_eq!(
            tls["clientRootCAs"]["files"][1],
            Value::String("b.pem".into())
        );
        assert_eq!(
            env_name("ORDERER", "General.TLS.Enabled"),
            "ORDERER_GENERAL_TLS_ENABLED"
        );
        let e = load(Some(&dir.path().join("nope.yaml")), "CORE", &[], |_| None).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }
}
