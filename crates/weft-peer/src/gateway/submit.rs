//! `Gateway.Submit`: the client-signed transaction to the channel's orderers, on kept
//! Broadcast streams over one kept mutual-TLS connection per orderer. Non-BFT: one orderer at
//! a time, starting with the next in turn, the next tried when one fails; a 4xx status (the
//! transaction is bad) ends the attempt. BFT: every orderer at once, done when a quorum accepted (as Fabric's gateway).

use std::sync::atomic::Ordering;

use tonic::{Code, Status};
use weft_proto::common::Status as CommonStatus;
use weft_proto::gateway::{ErrorDetail, SubmitRequest, SubmitResponse};

use super::errors::{error_detail, rpc_error};
use super::join::{bft_quorum, join_until};
use super::policy::org_tls_roots;
use super::remote::Target;
use super::Gateway;
use crate::channel::Channel;

impl Gateway {
    /// The orderers of `channel`.
    fn orderers(&self, channel: &Channel) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        if let Some(config) = channel.config() {
            for (msp_id, address) in config.orderer_endpoints() {
                let roots = if msp_id.is_empty() {
                    config.orderer_tls_roots()
                } else {
                    config
                        .org_by_msp_id(&msp_id)
                        .map(|o| {
                            o.msp
                                .tls_root_certs()
                                .iter()
                                .chain(o.msp.tls_intermediate_certs())
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_else(|| config.orderer_tls_roots())
                };
                out.push(Target {
                    address,
                    msp_id,
                    server_name: None,
                    roots,
                });
            }
        }
        if out.is_empty() {
            for o in &self.opts.orderers {
                out.push(Target {
                    address: o.address.clone(),
                    msp_id: o.msp_id.clone(),
                    server_name: o.server_name.clone(),
                    roots: org_tls_roots(channel, &o.msp_id),
                });
            }
        }
        out
    }

    /// `Submit`.
    pub async fn submit(&self, req: SubmitRequest) -> Result<SubmitResponse, Status> {
        let envelope = req
            .prepared_transaction
            .ok_or_else(|| Status::invalid_argument("a prepared transaction is required"))?;
        if envelope.signature.is_empty() {
            return Err(Status::invalid_argument(
                "prepared transaction must be signed: sign the envelope's payload with the client identity before Submit",
            ));
        }
        let channel = self.channel(&req.channel_id)?;
        let orderers = self.orderers(&channel);
        if orderers.is_empty() {
            return Err(Status::unavailable(format!(
                "no orderer nodes available for channel {}: the channel config names no orderer endpoints",
                channel.id()
            )));
        }
        if let Some(config) = channel.config() {
            if config.consensus_type().eq_ignore_ascii_case("BFT") {
                let cluster = match config.orderer().consenters.len() {
                    0 => orderers.len(),
                    n => n,
                };
                return self
                    .submit_bft(&req.transaction_id, &orderers, cluster, envelope)
                    .await;
            }
        }
        let first = self.next_orderer.fetch_add(1, Ordering::Relaxed) % orderers.len();
        let mut details = Vec::new();
        for i in 0..orderers.len() {
            let o = &orderers[(first + i) % orderers.len()];
            tracing::debug!(tx_id = %req.transaction_id, orderer = %o.address, "sending transaction to orderer");
            let (status, info) = match self.broadcast(o, envelope.clone()).await {
                Ok(r) => r,
                Err(msg) => {
                    tracing::warn!(tx_id = %req.transaction_id, orderer = %o.address, "broadcast failed: {msg}");
                    details.push(error_detail(&o.address, &o.msp_id, msg));
                    continue;
                }
            };
            if status == CommonStatus::Success as i32 {
                return Ok(SubmitResponse {});
            }
            let name = CommonStatus::try_from(status)
                .map(|s| s.as_str_name().to_owned())
                .unwrap_or_else(|_| status.to_string());
            let msg =
                format!("received unsuccessful response from orderer: status={name}, info={info}");
            tracing::warn!(tx_id = %req.transaction_id, orderer = %o.address, "{msg}");
            if (400..500).contains(&status) {
                return Err(rpc_error(
                    Code::Aborted,
                    msg.clone(),
                    &[error_detail(&o.address, &o.msp_id, msg)],
                ));
            }
            details.push(error_detail(&o.address, &o.msp_id, msg));
        }
        Err(rpc_error(
            Code::Unavailable,
            "no orderers could successfully process transaction",
            &details,
        ))
    }

    /// BFT ordering: send to every orderer at once (one faulty or censoring node cannot drop
    /// the transaction) and succeed when a quorum of the cluster accepted it, as Fabric's
    /// gateway does.
    async fn submit_bft(
        &self,
        tx_id: &str,
        orderers: &[Target],
        cluster: usize,
        envelope: weft_proto::common::Envelope,
    ) -> Result<SubmitResponse, Status> {
        let quorum = bft_quorum(cluster).min(orderers.len());
        let calls = orderers.iter().map(|o| {
            let envelope = envelope.clone();
            async move {
                let msg = match self.broadcast(o, envelope).await {
                    Ok((status, _)) if status == CommonStatus::Success as i32 => return None,
                    Ok((status, info)) => format!(
                        "received unsuccessful response from orderer: status={}, info={info}",
                        CommonStatus::try_from(status)
                            .map(|s| s.as_str_name().to_owned())
                            .unwrap_or_else(|_| status.to_string())
                    ),
                    Err(msg) => msg,
                };
                tracing::warn!(%tx_id, orderer = %o.address, "broadcast failed: {msg}");
                Some(error_detail(&o.address, &o.msp_id, msg))
            }
        });
        let total = orderers.len();
        let (mut ok, mut failed) = (0usize, 0usize);
        let outcomes = join_until(calls, |r: &Option<ErrorDetail>| {
            match r {
                None => ok += 1,
                Some(_) => failed += 1,
            }
            ok >= quorum || failed > total - quorum
        })
        .await;
        let successes = outcomes.iter().filter(|r| r.is_none()).count();
        if successes >= quorum {
            return Ok(SubmitResponse {});
        }
        let details: Vec<ErrorDetail> = outcomes.into_iter().flatten().collect();
        Err(rpc_error(
            Code::Unavailable,
            format!("insufficient number of orderers could successfully process transaction to satisfy quorum requirement ({successes} of {quorum} needed)"),
            &details,
        ))
    }

    /// One Broadcast exchange on a kept stream to `target` (see [`super::streams`]): the
    /// orderer's status and info, or why there is none within `peer.gateway.broadcastTimeout`.
    async fn broadcast(
        &self,
        target: &Target,
        envelope: weft_proto::common::Envelope,
    ) -> Result<(i32, String), String> {
        self.broadcasts
            .broadcast(
                &self.connections,
                target,
                envelope,
                self.opts.broadcast_timeout,
            )
            .await
    }
}
