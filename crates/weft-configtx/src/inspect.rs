//! A readable summary of a channel config, for `weft configtx inspect`.

use std::fmt::Write as _;

use crate::channel::{ChannelConfig, OrgConfig};
use crate::units::format_go_duration;

/// The channel, its orgs (MSP IDs, anchor peers, endpoints, CA subjects), orderer settings,
/// capabilities, ACL count and every policy with its rule.
pub fn describe(config: &ChannelConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "channel: {}", config.channel_id());
    let _ = writeln!(out, "config sequence: {}", config.sequence());
    let caps = config.capabilities();
    let list = |s: &std::collections::BTreeSet<String>| {
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            s.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    let _ = writeln!(
        out,
        "capabilities: channel {}; orderer {}; application {}",
        list(&caps.channel),
        list(&caps.orderer),
        list(&caps.application)
    );
    let o = config.orderer();
    let _ = writeln!(out, "orderer:");
    let _ = writeln!(
        out,
        "  consensus: {}{}",
        o.consensus_type,
        if o.maintenance {
            " (maintenance mode)"
        } else {
            ""
        }
    );
    if let Some(raft) = &o.etcdraft {
        for c in &raft.consenters {
            let _ = writeln!(out, "  raft consenter: {}:{}", c.host, c.port);
        }
    }
    for c in &o.consenters {
        let _ = writeln!(
            out,
            "  BFT consenter {}: {}:{} ({})",
            c.id, c.host, c.port, c.msp_id
        );
    }
    let b = o.batch;
    let _ = writeln!(
        out,
        "  batch: timeout {}, max {} messages, absolute max {} bytes, preferred max {} bytes",
        format_go_duration(b.timeout),
        b.max_message_count,
        b.absolute_max_bytes,
        b.preferred_max_bytes
    );
    let endpoints = config.orderer_endpoints();
    if endpoints.is_empty() {
        let _ = writeln!(out, "  endpoints: (none)");
    }
    for (msp, addr) in endpoints {
        let _ = writeln!(
            out,
            "  endpoint: {addr} ({})",
            if msp.is_empty() {
                "channel-level"
            } else {
                &msp
            }
        );
    }
    let org = |out: &mut String, org: &OrgConfig| {
        let _ = writeln!(out, "  {} (MSP ID {})", org.name, org.msp_id);
        let roots: Vec<String> = org
            .msp
            .root_certs()
            .map(|der| {
                weft_crypto::CertSummary::parse(&der.to_vec().into())
                    .map(|s| s.subject)
                    .unwrap_or_else(|_| "(unparsable)".to_owned())
            })
            .collect();
        let _ = writeln!(out, "    CA: {}", roots.join("; "));
        let _ = writeln!(
            out,
            "    NodeOUs: {}, TLS CAs: {}, admins: {}",
            if org.msp.node_ous_enabled() {
                "on"
            } else {
                "off"
            },
            org.msp.tls_root_certs().len() + org.msp.tls_intermediate_certs().len(),
            org.msp.admin_certs().len()
        );
        for (host, port) in &org.anchor_peers {
            let _ = writeln!(out, "    anchor peer: {host}:{port}");
        }
        for e in &org.orderer_endpoints {
            let _ = writeln!(out, "    orderer endpoint: {e}");
        }
    };
    let _ = writeln!(out, "orderer orgs:");
    for o in config.orderer_orgs().values() {
        org(&mut out, o);
    }
    let _ = writeln!(out, "application orgs:");
    for o in config.application_orgs().values() {
        org(&mut out, o);
    }
    let _ = writeln!(out, "ACLs: {}", config.acls().len());
    for (resource, policy) in config.acls() {
        let _ = writeln!(out, "  {resource}: {policy}");
    }
    let _ = writeln!(out, "policies:");
    for p in config.policies() {
        let _ = writeln!(
            out,
            "  {}: {} (mod_policy {})",
            p.path, p.rule, p.mod_policy
        );
    }
    out
}
