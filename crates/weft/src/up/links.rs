//! The link table `weft up` prints: every link of the network, probed now with the material
//! the real client of that link holds (`weft doctor tls`'s probe), so the table reports what
//! the servers actually negotiate and demand rather than what the config files say.

use std::path::Path;
use std::time::Duration;

use weft_tls::probe::{probe, ClientCertPolicy, ProbeOptions};
use weft_tls::{Identity, Profile};

use super::state::{ChaincodeMode, NetworkFile, TlsMode};

/// One link of the table.
#[derive(Debug, Clone)]
pub struct Link {
    pub link: String,
    pub endpoint: String,
    /// `TLSv1.3`, `plaintext`, or what failed.
    pub tls: String,
    /// The server refuses clients without a certificate.
    pub mutual: bool,
    pub server_auth: String,
    pub client_auth: String,
    /// The probe worked with the material the real client holds.
    pub ok: bool,
}

async fn probe_link(
    address: &str,
    ca: Option<&Path>,
    who: Option<(&Path, &Path)>,
) -> (String, ClientCertPolicy, bool) {
    let ca = match ca {
        Some(p) => match std::fs::read(p)
            .map_err(|e| e.to_string())
            .and_then(|b| weft_crypto::pem::certificates(&b, "CA").map_err(|e| e.to_string()))
        {
            Ok(c) => Some(c),
            Err(e) => {
                return (
                    format!("cannot read {}: {e}", p.display()),
                    ClientCertPolicy::Unknown,
                    false,
                )
            }
        },
        None => None,
    };
    let identity = match who {
        Some((c, k)) => match Identity::from_pem_files(c, k, "client TLS") {
            Ok(id) => Some(id),
            Err(e) => return (e.to_string(), ClientCertPolicy::Unknown, false),
        },
        None => None,
    };
    let opts = ProbeOptions {
        ca,
        identity,
        server_name: None,
        profile: Profile::Fabric,
        timeout: Some(Duration::from_secs(5)),
    };
    match probe(address, opts).await {
        Ok(r) => match &r.result {
            Ok(info) => (info.protocol.clone(), r.client_cert, true),
            Err(e) => (format!("FAILED: {}", e.code()), r.client_cert, false),
        },
        Err(e) => (format!("FAILED: {e}"), ClientCertPolicy::Unknown, false),
    }
}

fn client_words(policy: ClientCertPolicy, with_cert: &str, without: &str) -> (bool, String) {
    match policy {
        ClientCertPolicy::Required => (true, with_cert.to_owned()),
        ClientCertPolicy::Optional => (false, format!("{without} (a certificate is optional)")),
        _ => (false, without.to_owned()),
    }
}

/// Probe every link of `net`.
pub async fn probe_all(net: &NetworkFile) -> Vec<Link> {
    let mut out = Vec::new();
    let user = net.user("Org1MSP", "User1@");
    let plain = net.tls == TlsMode::Off;
    let mut add = |link: String,
                   endpoint: &str,
                   (tls, policy, ok): (String, ClientCertPolicy, bool),
                   server_auth: String,
                   with_cert: String,
                   without: &str| {
        let (mutual, client_auth) = if plain {
            (false, without.to_owned())
        } else {
            client_words(policy, &with_cert, without)
        };
        out.push(Link {
            link,
            endpoint: endpoint.to_owned(),
            tls: if plain { "plaintext".into() } else { tls },
            mutual,
            server_auth: if plain {
                "nothing (plaintext)".into()
            } else {
                server_auth
            },
            client_auth,
            ok: plain || ok,
        });
    };
    let p = |addr: &str, ca: Option<&Path>, who: Option<(&Path, &Path)>| {
        let addr = addr.to_owned();
        let ca = ca.map(Path::to_owned);
        let who = who.map(|(c, k)| (c.to_owned(), k.to_owned()));
        async move {
            if plain {
                return ("plaintext".to_owned(), ClientCertPolicy::NotRequested, true);
            }
            probe_link(
                &addr,
                ca.as_deref(),
                who.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            )
            .await
        }
    };

    if let (Some(user), Some(p1)) = (user, net.peers.first()) {
        add(
            format!("client ({}) -> {} (Gateway, Deliver)", user.name, p1.name),
            &p1.address,
            p(
                &p1.address,
                Some(&p1.tls_ca),
                Some((&user.tls_cert, &user.tls_key)),
            )
            .await,
            format!("{} cert from the {} TLS CA", p1.name, p1.org),
            "client cert from a channel org's TLS CA; proposals signed (MSP)".into(),
            "proposals signed (MSP)",
        );
        add(
            format!("client ({}) -> orderer (Broadcast, Deliver)", user.name),
            &net.orderer.address,
            p(
                &net.orderer.address,
                Some(&net.orderer.tls_ca),
                Some((&user.tls_cert, &user.tls_key)),
            )
            .await,
            "orderer cert from the orderer org's TLS CA".into(),
            "client cert from a channel org's TLS CA; envelopes signed (MSP)".into(),
            "envelopes signed (MSP)",
        );
    }
    for peer in &net.peers {
        add(
            format!("{} -> orderer (Deliver blocks)", peer.name),
            &net.orderer.address,
            p(
                &net.orderer.address,
                Some(&net.orderer.tls_ca),
                Some((&peer.tls_cert, &peer.tls_key)),
            )
            .await,
            "orderer cert; blocks signed by the orderer (BlockValidation)".into(),
            format!(
                "{} cert from the {} TLS CA; Deliver request signed",
                peer.name, peer.org
            ),
            "Deliver request signed (MSP)",
        );
    }
    if let [a, b, ..] = net.peers.as_slice() {
        for (from, to) in [(a, b), (b, a)] {
            add(
                format!("{} -> {} (Gateway endorsement)", from.name, to.name),
                &to.address,
                p(
                    &to.address,
                    Some(&to.tls_ca),
                    Some((&from.tls_cert, &from.tls_key)),
                )
                .await,
                format!("{} cert from the {} TLS CA", to.name, to.org),
                format!(
                    "{} cert from the {} TLS CA; proposal signed",
                    from.name, from.org
                ),
                "proposal signed (MSP)",
            );
        }
    }
    for peer in &net.peers {
        // The real client holds a per-launch certificate issued by the peer's in-memory
        // ephemeral CA, which no other process can have or verify: the evidence for this link
        // is the peer's own record of the chaincode registering over it.
        let package = net
            .chaincode(ChaincodeMode::Launched)
            .and_then(|c| c.package_ids.get(&peer.msp_id))
            .cloned()
            .unwrap_or_default();
        let log = peer
            .fs_path
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join(format!("logs/{}.log", peer.name)));
        let registered = !package.is_empty()
            && log
                .and_then(|l| std::fs::read_to_string(l).ok())
                .is_some_and(|t| {
                    t.lines().any(|l| {
                        l.contains("chaincode stream ready")
                            && l.contains(&package)
                            && l.contains("dev_mode=false")
                    })
                });
        let (tls, policy) = if registered {
            ("TLS".to_owned(), ClientCertPolicy::Required)
        } else {
            ("no registration seen".to_owned(), ClientCertPolicy::Unknown)
        };
        add(
            format!(
                "launched chaincode ({}) -> {} chaincode service",
                crate::up::files::LAUNCHED,
                peer.name
            ),
            &peer.chaincode_address,
            (tls, policy, registered),
            "cert from the peer's ephemeral CA (given to each launch)".into(),
            "fresh per-launch client cert, short-lived, bound to the package id (peer log: \
             registered)"
                .into(),
            "nothing",
        );
    }
    if let Some(cc) = net.chaincode(ChaincodeMode::Server) {
        for peer in &net.peers {
            let Some(address) = cc.server_addresses.get(&peer.msp_id) else {
                continue;
            };
            let dir = peer
                .fs_path
                .parent()
                .and_then(Path::parent)
                .map(|d| d.join(format!("chaincode/{}-{}", cc.name, peer.org)));
            let (cert, key) = match &dir {
                Some(d) => (d.join("client.crt"), d.join("client.key")),
                None => continue,
            };
            add(
                format!(
                    "{} -> chaincode server {} (connection.json)",
                    peer.name, cc.name
                ),
                address,
                p(address, Some(&peer.tls_ca), Some((&cert, &key))).await,
                format!(
                    "server cert checked against connection.json root_cert ({} TLS CA)",
                    peer.org
                ),
                "client_cert of connection.json, checked against the server's client CA".into(),
                "nothing",
            );
        }
    }
    let admin = (&net.orderer.admin_tls_cert, &net.orderer.admin_tls_key);
    let admin_probe = probe_link(
        &net.orderer.admin_address,
        Some(&net.orderer.tls_ca),
        Some((admin.0, admin.1)),
    )
    .await;
    let (mutual, client_auth) = client_words(
        admin_probe.1,
        "orderer admin's client cert (Admin.TLS.ClientRootCAs)",
        "nothing",
    );
    out.push(Link {
        link: "admin -> orderer channel participation API".into(),
        endpoint: net.orderer.admin_address.clone(),
        tls: admin_probe.0,
        mutual,
        server_auth: "orderer cert from the orderer org's TLS CA".into(),
        client_auth,
        ok: admin_probe.2,
    });
    out
}

/// The table, as text.
pub fn render(links: &[Link]) -> String {
    let headers = [
        "LINK",
        "ENDPOINT",
        "TLS",
        "MUTUAL",
        "SERVER PROVES",
        "CLIENT PROVES",
    ];
    let rows: Vec<[String; 6]> = links
        .iter()
        .map(|l| {
            [
                l.link.clone(),
                l.endpoint.clone(),
                l.tls.clone(),
                if l.mutual { "yes".into() } else { "no".into() },
                l.server_auth.clone(),
                l.client_auth.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::from("  ");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 5 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(headers)];
    for r in &rows {
        out.push(line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lines_up() {
        let l = |name: &str, mutual| Link {
            link: name.into(),
            endpoint: "127.0.0.1:7051".into(),
            tls: "TLSv1.3".into(),
            mutual,
            server_auth: "server cert".into(),
            client_auth: "client cert".into(),
            ok: true,
        };
        let t = render(&[l("a -> b", true), l("a much longer link -> c", false)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("ENDPOINT");
        assert!(col.is_some());
        assert_eq!(lines[1].find("127.0.0.1"), col, "{t}");
        assert_eq!(lines[2].find("127.0.0.1"), col, "{t}");
        assert!(lines[1].contains(" yes "), "{t}");
        assert!(lines[2].contains(" no "), "{t}");
    }
}
