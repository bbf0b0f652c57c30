//! The channel's policies, compiled once when the config is parsed and evaluated by Fabric path.
//!
//! Every policy of the config tree is stored under its absolute path (`/Channel/Writers`,
//! `/Channel/Application/Org1MSP/Endorsement`, ...). Signature policies are held as
//! [`CompiledPolicy`]; an implicit meta policy remembers its group, and evaluating it evaluates
//! the named sub-policy of each child group (a child without it counts as not satisfied, like
//! Fabric), combined with [`evaluate_implicit_meta`]. Groups nest at most three deep, so the
//! recursion is bounded; nothing is decoded or compiled at evaluation time.

use std::collections::BTreeMap;

use weft_msp::policy::{
    decode_policy, evaluate_implicit_meta, format_implicit_meta, implicit_meta_threshold, to_dsl,
    CompiledPolicy, PolicyError, PolicyKind,
};
use weft_msp::ValidatedIdentity;
use weft_proto::common::{ConfigGroup, ImplicitMetaPolicy};

use crate::error::ConfigError;

/// Deepest group nesting a config may have (Channel / Application / Org).
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone)]
enum Node {
    Signature {
        policy: CompiledPolicy,
        text: String,
    },
    ImplicitMeta {
        meta: ImplicitMetaPolicy,
        /// The group whose children the sub-policy is looked up in.
        group: String,
    },
}

/// A policy of the config, for display: its path, its rule in text form, its mod_policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub path: String,
    /// `Signature: OR('Org1MSP.admin')` or `ImplicitMeta: MAJORITY Admins`.
    pub rule: String,
    pub mod_policy: String,
}

/// All policies of a config tree, compiled.
#[derive(Debug, Clone, Default)]
pub(crate) struct PolicyTree {
    nodes: BTreeMap<String, Node>,
    mod_policies: BTreeMap<String, String>,
    /// Group path -> paths of its child groups.
    children: BTreeMap<String, Vec<String>>,
}

impl PolicyTree {
    /// Compile every policy under `group` (at `path`, e.g. `/Channel`).
    pub(crate) fn build(path: &str, group: &ConfigGroup) -> Result<PolicyTree, ConfigError> {
        let mut tree = PolicyTree::default();
        tree.add_group(path, group, 0)?;
        Ok(tree)
    }

    fn add_group(
        &mut self,
        path: &str,
        group: &ConfigGroup,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_DEPTH {
            return Err(ConfigError::invalid(
                path,
                format!("config groups nest more than {MAX_DEPTH} deep"),
            ));
        }
        for (name, cp) in &group.policies {
            let ppath = format!("{path}/{name}");
            let policy = cp.policy.as_ref().ok_or_else(|| {
                ConfigError::invalid(&ppath, "the config policy is empty (no policy)")
            })?;
            let node = match decode_policy(policy)
                .map_err(|e| ConfigError::invalid(&ppath, e.to_string()))?
            {
                PolicyKind::Signature(envelope) => {
                    let compiled = CompiledPolicy::new(&envelope)
                        .map_err(|e| ConfigError::invalid(&ppath, e.to_string()))?;
                    let text = to_dsl(&envelope).unwrap_or_else(|_| compiled.to_string());
                    Node::Signature {
                        policy: compiled,
                        text,
                    }
                }
                PolicyKind::ImplicitMeta(meta) => {
                    if weft_msp::policy::ImplicitMetaRule::try_from(meta.rule).is_err() {
                        return Err(ConfigError::invalid(
                            &ppath,
                            format!("unknown implicit meta rule {}", meta.rule),
                        ));
                    }
                    if meta.sub_policy.is_empty() {
                        return Err(ConfigError::invalid(
                            &ppath,
                            "implicit meta policy without a sub-policy name",
                        ));
                    }
                    Node::ImplicitMeta {
                        meta,
                        group: path.to_owned(),
                    }
                }
            };
            self.nodes.insert(ppath.clone(), node);
            self.mod_policies.insert(ppath, cp.mod_policy.clone());
        }
        let mut kids = Vec::with_capacity(group.groups.len());
        for (name, child) in &group.groups {
            let cpath = format!("{path}/{name}");
            self.add_group(&cpath, child, depth + 1)?;
            kids.push(cpath);
        }
        self.children.insert(path.to_owned(), kids);
        Ok(())
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    pub(crate) fn paths(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    pub(crate) fn info(&self) -> Vec<PolicyInfo> {
        self.nodes
            .iter()
            .map(|(path, node)| PolicyInfo {
                path: path.clone(),
                rule: match node {
                    Node::Signature { text, .. } => format!("Signature: {text}"),
                    Node::ImplicitMeta { meta, .. } => {
                        format!("ImplicitMeta: {}", format_implicit_meta(meta))
                    }
                },
                mod_policy: self.mod_policies.get(path).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Evaluate the policy at `path` (which must exist: see [`PolicyTree::contains`]).
    pub(crate) fn evaluate(
        &self,
        path: &str,
        identities: &[ValidatedIdentity],
    ) -> Result<(), PolicyError> {
        // Most evaluations succeed: check without building explanations first, and explain
        // only a failure.
        if self.satisfied(path, identities, 0) {
            return Ok(());
        }
        self.eval(path, identities, 0)
    }

    /// [`PolicyTree::evaluate`] with the explaining evaluator only (tests compare it with the
    /// quick check).
    pub(crate) fn evaluate_explained(
        &self,
        path: &str,
        identities: &[ValidatedIdentity],
    ) -> Result<(), PolicyError> {
        self.eval(path, identities, 0)
    }

    /// Whether the policy at `path` is satisfied, without explanations.
    pub(crate) fn is_satisfied(&self, path: &str, identities: &[ValidatedIdentity]) -> bool {
        self.satisfied(path, identities, 0)
    }

    /// [`PolicyTree::eval`] without explanations.
    fn satisfied(&self, path: &str, ids: &[ValidatedIdentity], depth: usize) -> bool {
        match self.nodes.get(path) {
            None => false,
            Some(Node::Signature { policy, .. }) => policy.is_satisfied(ids),
            Some(Node::ImplicitMeta { meta, group }) => {
                if depth > MAX_DEPTH {
                    return false;
                }
                let Ok(rule) = weft_msp::policy::ImplicitMetaRule::try_from(meta.rule) else {
                    return false;
                };
                let kids = self.children.get(group).map(Vec::as_slice).unwrap_or(&[]);
                let threshold = implicit_meta_threshold(rule, kids.len());
                if threshold == 0 {
                    return true;
                }
                let mut satisfied = 0;
                let mut sub = String::new();
                for child in kids {
                    sub.clear();
                    sub.push_str(child);
                    sub.push('/');
                    sub.push_str(&meta.sub_policy);
                    if self.satisfied(&sub, ids, depth + 1) {
                        satisfied += 1;
                        if satisfied >= threshold {
                            return true;
                        }
                    }
                }
                false
            }
        }
    }

    fn eval(&self, path: &str, ids: &[ValidatedIdentity], depth: usize) -> Result<(), PolicyError> {
        let node = self
            .nodes
            .get(path)
            .ok_or_else(|| PolicyError::NotSatisfied {
                explanation: format!("no policy {path}"),
            })?;
        match node {
            Node::Signature { policy, .. } => policy.evaluate(ids),
            Node::ImplicitMeta { meta, group } => {
                if depth > MAX_DEPTH {
                    return Err(PolicyError::Invalid {
                        detail: format!("implicit meta policies nest too deep at {path}"),
                    });
                }
                let kids = self.children.get(group).map(Vec::as_slice).unwrap_or(&[]);
                let subs = kids.iter().map(|child| {
                    let name = child.rsplit('/').next().unwrap_or(child).to_owned();
                    let sub = format!("{child}/{}", meta.sub_policy);
                    (name, move || self.eval(&sub, ids, depth + 1))
                });
                evaluate_implicit_meta(meta, subs)
            }
        }
    }
}
