//! The peer-local `_lifecycle` calls: `InstallChaincode`, `QueryInstalledChaincode(s)` and
//! `GetInstalledChaincodePackage`, as `peer lifecycle chaincode install | queryinstalled |
//! getinstalledpackage` send them.
//!
//! These proposals name no channel: they touch only the peer's install store
//! (`<peer.fileSystemPath>/lifecycle/chaincodes`), never a ledger, so nothing is simulated,
//! endorsed or ordered. The endorser checks that the creator is an admin of the peer's own
//! organization (Fabric's local `Admins` policy for these resources) and then calls
//! [`serve`]; the answer is the result message as the response payload.
//!
//! As in Fabric, installing stores the package and then builds it (without launching it): a
//! package that no builder accepts, or whose build fails, is removed again and the install
//! fails with the builder's error. Installing a package that is already installed and built
//! is refused with Fabric's "chaincode already successfully installed" message.
//!
//! `references` (which channel definitions use a package) come from the channels' committed
//! `_lifecycle` definitions and the package this peer's org approved for each.
//!
//! The pieces are plain functions over an [`InstallStore`] and a [`References`] map, so tests
//! drive them without a peer; only [`serve`] and [`references`] touch the running node.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use prost::Message;
use weft_proto::lifecycle::{
    query_installed_chaincode_result, query_installed_chaincodes_result,
    GetInstalledChaincodePackageArgs, GetInstalledChaincodePackageResult, InstallChaincodeArgs,
    InstallChaincodeResult, QueryInstalledChaincodeArgs, QueryInstalledChaincodeResult,
    QueryInstalledChaincodesArgs, QueryInstalledChaincodesResult,
};

use crate::channel::Channels;
use crate::lifecycle::{LifecycleError, LifecycleState, LIFECYCLE};
use crate::package::{InstallOutcome, InstallStore, PackageError};

/// `_lifecycle` functions served without a channel.
pub const LOCAL_FUNCTIONS: [&str; 4] = [
    "InstallChaincode",
    "QueryInstalledChaincode",
    "QueryInstalledChaincodes",
    "GetInstalledChaincodePackage",
];

/// Whether `function` is one of the peer-local `_lifecycle` calls.
pub fn is_local_function(function: &str) -> bool {
    LOCAL_FUNCTIONS.contains(&function)
}

/// Why a local call failed: the response status (404 for a package that is not installed,
/// 500 otherwise, as Fabric answers) and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LocalError {
    pub status: i32,
    pub message: String,
}

impl LocalError {
    fn failed(function: &str, detail: impl std::fmt::Display) -> LocalError {
        LocalError {
            status: 500,
            message: format!("failed to invoke backing implementation of '{function}': {detail}"),
        }
    }

    fn from_package(function: &str, e: PackageError) -> LocalError {
        match e {
            PackageError::NotInstalled { package_id, .. } => LocalError {
                status: 404,
                message: format!(
                    "chaincode install package '{package_id}' not found on this peer \
                     (`peer lifecycle chaincode queryinstalled` lists what is installed)"
                ),
            },
            other => LocalError::failed(function, other),
        }
    }
}

/// Channel -> chaincode definitions (name, version) that run a package, by package id.
pub type References = BTreeMap<String, BTreeMap<String, Vec<(String, String)>>>;

/// Builds an installed package without launching it. The peer's runtime implements it; a
/// build that no builder claims, or that fails, is an error naming the builder's complaint.
pub trait PackageBuilder: Send + Sync {
    fn build<'a>(
        &'a self,
        package_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

/// The runtime builds as it does before a first launch (chaincode as a service: the
/// `connection.json` is released and the server is probed, with a warning if it does not
/// answer yet); nothing is launched.
impl PackageBuilder for crate::runtime::ChaincodeRuntime {
    fn build<'a>(
        &'a self,
        package_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let report = self.deploy(package_id).await.map_err(|e| e.to_string())?;
            tracing::info!(package_id, builder = %report.builder, "built chaincode package at install");
            Ok(())
        })
    }
}

/// The decoded argument of a local call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCall {
    Install(Bytes),
    QueryInstalled(String),
    QueryAllInstalled,
    GetPackage(String),
}

/// Decode `function`'s single argument (a marshalled `<Function>Args`).
pub fn decode_call(function: &str, arg: &[u8]) -> Result<LocalCall, LocalError> {
    let bad = |e: prost::DecodeError| {
        LocalError::failed(function, format!("the argument does not decode: {e}"))
    };
    Ok(match function {
        "InstallChaincode" => {
            let a = InstallChaincodeArgs::decode(arg).map_err(bad)?;
            if a.chaincode_install_package.is_empty() {
                return Err(LocalError::failed(
                    function,
                    "the chaincode install package is empty",
                ));
            }
            LocalCall::Install(a.chaincode_install_package)
        }
        "QueryInstalledChaincode" => LocalCall::QueryInstalled(
            QueryInstalledChaincodeArgs::decode(arg)
                .map_err(bad)?
                .package_id,
        ),
        "QueryInstalledChaincodes" => {
            QueryInstalledChaincodesArgs::decode(arg).map_err(bad)?;
            LocalCall::QueryAllInstalled
        }
        "GetInstalledChaincodePackage" => LocalCall::GetPackage(
            GetInstalledChaincodePackageArgs::decode(arg)
                .map_err(bad)?
                .package_id,
        ),
        other => {
            return Err(LocalError::failed(
                other,
                format!(
                    "_lifecycle {other} needs a channel; without one only {} are served",
                    LOCAL_FUNCTIONS.join(", ")
                ),
            ))
        }
    })
}

/// Store a package (checked in full by the store: format, label, every path in
/// code.tar.gz). Answers what was stored and whether it was there already.
pub fn store_package(store: &InstallStore, package: &[u8]) -> Result<InstallOutcome, LocalError> {
    store.install(package).map_err(|e| {
        LocalError::failed(
            "InstallChaincode",
            format!("could not save cc install package: {e}"),
        )
    })
}

/// Remove a package whose build failed (Fabric does the same), so it is not listed as usable.
pub fn remove_package(store: &InstallStore, package_id: &str) {
    match store.path_of(package_id) {
        Ok(path) => {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(package_id, path = %path.display(), "cannot remove the package that failed to build: {e}");
            }
        }
        Err(e) => tracing::warn!(
            package_id,
            "cannot remove the package that failed to build: {e}"
        ),
    }
}

/// Install: store, build, and answer `InstallChaincodeResult`.
pub async fn install(
    store: &InstallStore,
    builder: Option<&dyn PackageBuilder>,
    package: &[u8],
) -> Result<InstallChaincodeResult, LocalError> {
    let outcome = store_package(store, package)?;
    let id = outcome.chaincode.package_id.clone();
    if let Some(b) = builder {
        if let Err(e) = b.build(&id).await {
            if !outcome.already_installed {
                remove_package(store, &id);
            }
            return Err(LocalError::failed(
                "InstallChaincode",
                format!("could not build chaincode: {e}"),
            ));
        }
    }
    if outcome.already_installed {
        return Err(LocalError::failed(
            "InstallChaincode",
            format!("chaincode already successfully installed (package ID '{id}')"),
        ));
    }
    tracing::info!(package_id = %id, "successfully installed chaincode");
    Ok(InstallChaincodeResult {
        package_id: id,
        label: outcome.chaincode.label,
    })
}

/// `QueryInstalledChaincodes`: every installed package with the definitions using it.
pub fn query_all_installed(
    store: &InstallStore,
    refs: &References,
) -> Result<QueryInstalledChaincodesResult, LocalError> {
    use query_installed_chaincodes_result as q;
    let installed = store
        .query_installed()
        .map_err(|e| LocalError::from_package("QueryInstalledChaincodes", e))?;
    Ok(QueryInstalledChaincodesResult {
        installed_chaincodes: installed
            .into_iter()
            .map(|c| q::InstalledChaincode {
                references: refs
                    .get(&c.package_id)
                    .map(|by_channel| {
                        by_channel
                            .iter()
                            .map(|(channel, ccs)| {
                                (
                                    channel.clone(),
                                    q::References {
                                        chaincodes: ccs
                                            .iter()
                                            .map(|(name, version)| q::Chaincode {
                                                name: name.clone(),
                                                version: version.clone(),
                                            })
                                            .collect(),
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                package_id: c.package_id,
                label: c.label,
            })
            .collect(),
    })
}

/// `QueryInstalledChaincode`: one installed package.
pub fn query_installed(
    store: &InstallStore,
    refs: &References,
    package_id: &str,
) -> Result<QueryInstalledChaincodeResult, LocalError> {
    use query_installed_chaincode_result as q;
    const F: &str = "QueryInstalledChaincode";
    // Validates the id and checks the stored bytes against it.
    store
        .get(package_id)
        .map_err(|e| LocalError::from_package(F, e))?;
    let label = package_id
        .split_once(':')
        .map(|(l, _)| l.to_owned())
        .unwrap_or_default();
    Ok(QueryInstalledChaincodeResult {
        package_id: package_id.to_owned(),
        label,
        references: refs
            .get(package_id)
            .map(|by_channel| {
                by_channel
                    .iter()
                    .map(|(channel, ccs)| {
                        (
                            channel.clone(),
                            q::References {
                                chaincodes: ccs
                                    .iter()
                                    .map(|(name, version)| q::Chaincode {
                                        name: name.clone(),
                                        version: version.clone(),
                                    })
                                    .collect(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// `GetInstalledChaincodePackage`: the package's bytes, as installed.
pub fn get_package(
    store: &InstallStore,
    package_id: &str,
) -> Result<GetInstalledChaincodePackageResult, LocalError> {
    let bytes = store
        .get(package_id)
        .map_err(|e| LocalError::from_package("GetInstalledChaincodePackage", e))?;
    Ok(GetInstalledChaincodePackageResult {
        chaincode_install_package: bytes.into(),
    })
}

/// `queryinstalled --output json` in Fabric's shape: Go's `json.MarshalIndent` of the
/// result with tab indentation, empty fields left out (an empty list prints `{}`), map keys
/// sorted.
pub fn installed_chaincodes_result_json(result: &QueryInstalledChaincodesResult) -> String {
    #[derive(serde::Serialize)]
    struct Chaincode<'a> {
        #[serde(skip_serializing_if = "str::is_empty")]
        name: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        version: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Refs<'a> {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        chaincodes: Vec<Chaincode<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Installed<'a> {
        #[serde(skip_serializing_if = "str::is_empty")]
        package_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        label: &'a str,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        references: BTreeMap<&'a str, Refs<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Output<'a> {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        installed_chaincodes: Vec<Installed<'a>>,
    }
    let value = Output {
        installed_chaincodes: result
            .installed_chaincodes
            .iter()
            .map(|c| Installed {
                package_id: &c.package_id,
                label: &c.label,
                references: c
                    .references
                    .iter()
                    .map(|(channel, r)| {
                        (
                            channel.as_str(),
                            Refs {
                                chaincodes: r
                                    .chaincodes
                                    .iter()
                                    .map(|cc| Chaincode {
                                        name: &cc.name,
                                        version: &cc.version,
                                    })
                                    .collect(),
                            },
                        )
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match serde::Serialize::serialize(&value, &mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        // Serializing plain strings cannot fail; keep the output well-formed regardless.
        Err(_) => "{}".to_string(),
    }
}

/// Read-only `_lifecycle` state over a committed view.
struct View<'a>(&'a weft_ledger::ReadView);

impl LifecycleState for View<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, LifecycleError> {
        self.0
            .get(LIFECYCLE, key)
            .map(|v| v.map(|v| v.value))
            .map_err(|e| LifecycleError(format!("reading {key}: {e}")))
    }

    fn put(&mut self, key: &str, _value: Bytes) -> Result<(), LifecycleError> {
        Err(LifecycleError(format!(
            "{key}: the committed lifecycle state is read-only"
        )))
    }

    fn range(&mut self, start: &str, end: &str) -> Result<Vec<(String, Bytes)>, LifecycleError> {
        self.0
            .range(LIFECYCLE, start, end, 100_000)
            .map(|v| v.into_iter().map(|(k, v)| (k, v.value)).collect())
            .map_err(|e| LifecycleError(format!("range {start}..{end}: {e}")))
    }
}

/// Group (channel, chaincode name, version, package id) rows by package id, then channel.
pub fn group_references<I>(rows: I) -> References
where
    I: IntoIterator<Item = (String, String, String, String)>,
{
    let mut refs = References::new();
    for (channel, name, version, package_id) in rows {
        if package_id.is_empty() {
            continue;
        }
        refs.entry(package_id)
            .or_default()
            .entry(channel)
            .or_default()
            .push((name, version));
    }
    refs
}

/// The committed definitions on every channel whose package (this org's approval) is
/// installed here. A channel whose state cannot be read is skipped with a warning.
pub async fn references(channels: &Channels) -> References {
    let mut rows = Vec::new();
    for id in channels.ids() {
        let Some(channel) = channels.get(&id) else {
            continue;
        };
        let view = channel.state().read().await;
        let committed = match crate::lifecycle::all_committed(&mut View(&view)) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(channel = %id, "cannot read the chaincode definitions: {e}");
                continue;
            }
        };
        drop(view);
        for (name, c) in committed {
            if let Some(pkg) = channel.package_for(&name) {
                rows.push((id.clone(), name, c.params.version, pkg));
            }
        }
    }
    group_references(rows)
}

/// Serve one local call (the caller has checked that the creator is a peer admin).
pub async fn serve(
    store: &InstallStore,
    builder: Option<&dyn PackageBuilder>,
    channels: &Channels,
    function: &str,
    arg: &[u8],
) -> Result<Bytes, LocalError> {
    let bytes = match decode_call(function, arg)? {
        LocalCall::Install(pkg) => install(store, builder, &pkg).await?.encode_to_vec(),
        LocalCall::QueryAllInstalled => {
            query_all_installed(store, &references(channels).await)?.encode_to_vec()
        }
        LocalCall::QueryInstalled(id) => {
            query_installed(store, &references(channels).await, &id)?.encode_to_vec()
        }
        LocalCall::GetPackage(id) => get_package(store, &id)?.encode_to_vec(),
    };
    Ok(bytes.into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::package::ChaincodePackage;

    fn package(label: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("connection.json"), br#"{"address":"a:1"}"#).unwrap();
        let code = crate::package::code_archive_from_directory(dir.path(), "ccaas").unwrap();
        ChaincodePackage::build(label, "ccaas", "", &code).unwrap()
    }

    struct Refuse;
    impl PackageBuilder for Refuse {
        fn build<'a>(
            &'a self,
            package_id: &'a str,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
            Box::pin(async move { Err(format!("no builder claims {package_id}")) })
        }
    }

    #[tokio::test]
    async fn install_query_get_and_failed_build() {
        let dir = tempfile::tempdir().unwrap();
        let store = InstallStore::open(dir.path()).unwrap();
        let pkg = package("basic_1.0");
        let r = install(&store, None, &pkg).await.unwrap();
        assert!(r.package_id.starts_with("basic_1.0:"));
        let again = install(&store, None, &pkg).await.unwrap_err();
        assert!(
            again.message.contains("already successfully installed"),
            "{again}"
        );

        let refs = group_references([(
            "mychannel".to_owned(),
            "basic".to_owned(),
            "1.0".to_owned(),
            r.package_id.clone(),
        )]);
        let all = query_all_installed(&store, &refs).unwrap();
        assert_eq!(all.installed_chaincodes.len(), 1);
        let c = &all.installed_chaincodes[0];
        assert_eq!(c.references["mychannel"].chaincodes[0].version, "1.0");
        let one = query_installed(&store, &refs, &r.package_id).unwrap();
        assert_eq!(one.label, "basic_1.0");
        assert_eq!(
            get_package(&store, &r.package_id)
                .unwrap()
                .chaincode_install_package,
            pkg
        );
        let missing = format!("other_1:{}", "0".repeat(64));
        let e = get_package(&store, &missing).unwrap_err();
        assert_eq!(e.status, 404, "{e}");

        // A package no builder accepts is not left installed.
        let other = package("other_1.0");
        let e = install(&store, Some(&Refuse), &other).await.unwrap_err();
        assert!(
            e.message
                .contains("could not build chaincode: no builder claims"),
            "{e}"
        );
        assert_eq!(store.query_installed().unwrap().len(), 1);
    }

    #[test]
    fn json_has_fabric_shape() {
        use query_installed_chaincodes_result as q;
        assert_eq!(
            installed_chaincodes_result_json(&QueryInstalledChaincodesResult::default()),
            "{}"
        );
        let r = QueryInstalledChaincodesResult {
            installed_chaincodes: vec![q::InstalledChaincode {
                package_id: "basic_1.0:ab".into(),
                label: "basic_1.0".into(),
                references: [(
                    "mychannel".to_owned(),
                    q::References {
                        chaincodes: vec![q::Chaincode {
                            name: "basic".into(),
                            version: "1.0".into(),
                        }],
                    },
                )]
                .into_iter()
                .collect(),
            }],
        };
        let json = installed_chaincodes_result_json(&r);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v["installed_chaincodes"][0]["references"]["mychannel"]["chaincodes"][0]["version"],
            "1.0"
        );
        assert!(json.contains("\n\t\"installed_chaincodes\": ["), "{json}");
    }

    #[test]
    fn channel_functions_are_refused_without_a_channel() {
        let e = decode_call("CommitChaincodeDefinition", b"").unwrap_err();
        assert!(e.message.contains("needs a channel"), "{e}");
        assert_eq!(
            decode_call("QueryInstalledChaincodes", b"").unwrap(),
            LocalCall::QueryAllInstalled
        );
    }
}
