//! Contracts: write transaction functions with typed arguments, not a dispatcher.
//!
//! ```no_run
//! use weft_shim::contract::{Contract, Ctx, Json};
//! use weft_shim::ChaincodeError;
//!
//! async fn read(ctx: Ctx, (id,): (String,)) -> Result<String, ChaincodeError> {
//!     let value = ctx.stub().get_state(&id).await?;
//!     let value = value.ok_or_else(|| ChaincodeError::msg(format!("asset {id} does not exist")))?;
//!     Ok(String::from_utf8_lossy(&value).into_owned())
//! }
//!
//! let contract = Contract::new("basic")
//!     .evaluate("ReadAsset", read)
//!     .submit("SetValue", |ctx: Ctx, (id, value): (String, i64)| async move {
//!         ctx.stub().put_state(&id, value.to_string()).await
//!     });
//! ```
//!
//! Arguments arrive as Fabric passes them, one byte string each; a function's argument tuple
//! says how to read them: `String` as UTF-8, numbers and `bool` parsed from their text,
//! `Json<T>` as JSON, `Bytes`/`Vec<u8>` raw. A wrong count or an unparsable argument is an
//! error response naming the argument. A function's `Err` becomes status 500 with its message,
//! as fabric-contract-api answers. Functions are addressed as `Name` or `contract:Name`, and
//! `org.hyperledger.fabric:GetMetadata` returns the contract's description.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Chaincode, ChaincodeError, Response, Stub};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type TxFn = Arc<dyn Fn(Ctx, Vec<Bytes>) -> BoxFuture<Result<Bytes, ChaincodeError>> + Send + Sync>;
type HookFn = Arc<dyn Fn(Ctx) -> BoxFuture<Result<(), ChaincodeError>> + Send + Sync>;

/// The function name Fabric's SDKs and tools call to learn what a contract offers.
pub const GET_METADATA: &str = "org.hyperledger.fabric:GetMetadata";

/// A transaction's context: its stub and the function being run.
#[derive(Debug, Clone)]
pub struct Ctx {
    stub: Stub,
    function: Arc<str>,
}

impl Ctx {
    pub fn stub(&self) -> &Stub {
        &self.stub
    }

    /// The transaction function being run (without a contract prefix).
    pub fn function(&self) -> &str {
        &self.function
    }
}

/// A JSON argument or result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

/// One argument read from its bytes.
pub trait FromArg: Sized {
    fn from_arg(arg: &Bytes) -> Result<Self, String>;
}

impl FromArg for String {
    fn from_arg(arg: &Bytes) -> Result<Self, String> {
        String::from_utf8(arg.to_vec()).map_err(|_| "not valid UTF-8".to_owned())
    }
}

impl FromArg for Bytes {
    fn from_arg(arg: &Bytes) -> Result<Self, String> {
        Ok(arg.clone())
    }
}

impl FromArg for Vec<u8> {
    fn from_arg(arg: &Bytes) -> Result<Self, String> {
        Ok(arg.to_vec())
    }
}

macro_rules! parsed_arg {
    ($($t:ty),*) => {$(
        impl FromArg for $t {
            fn from_arg(arg: &Bytes) -> Result<Self, String> {
                let text = std::str::from_utf8(arg).map_err(|_| "not valid UTF-8".to_owned())?;
                text.trim().parse::<$t>().map_err(|e| format!("{text:?} is not a valid {}: {e}", stringify!($t)))
            }
        }
    )*};
}
parsed_arg!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool);

impl<T: DeserializeOwned> FromArg for Json<T> {
    fn from_arg(arg: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(arg)
            .map(Json)
            .map_err(|e| format!("invalid JSON: {e}"))
    }
}

/// A function's whole argument list.
pub trait FromArgs: Sized {
    const COUNT: usize;
    fn from_args(args: &[Bytes]) -> Result<Self, String>;
}

impl FromArgs for () {
    const COUNT: usize = 0;
    fn from_args(_: &[Bytes]) -> Result<Self, String> {
        Ok(())
    }
}

macro_rules! tuple_args {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: FromArg),+> FromArgs for ($($t,)+) {
            const COUNT: usize = $n;
            fn from_args(args: &[Bytes]) -> Result<Self, String> {
                Ok(($($t::from_arg(&args[$i]).map_err(|e| format!("argument {} {e}", $i + 1))?,)+))
            }
        }
    };
}
tuple_args!(1; A 0);
tuple_args!(2; A 0, B 1);
tuple_args!(3; A 0, B 1, C 2);
tuple_args!(4; A 0, B 1, C 2, D 3);
tuple_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// A function's result turned into the response payload.
pub trait IntoPayload {
    fn into_payload(self) -> Result<Bytes, ChaincodeError>;
}

impl IntoPayload for () {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        Ok(Bytes::new())
    }
}
impl IntoPayload for String {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        Ok(self.into())
    }
}
impl IntoPayload for &'static str {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        Ok(Bytes::from_static(self.as_bytes()))
    }
}
impl IntoPayload for Bytes {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        Ok(self)
    }
}
impl IntoPayload for Vec<u8> {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        Ok(self.into())
    }
}
macro_rules! text_payload {
    ($($t:ty),*) => {$(
        impl IntoPayload for $t {
            fn into_payload(self) -> Result<Bytes, ChaincodeError> {
                Ok(self.to_string().into())
            }
        }
    )*};
}
text_payload!(bool, i32, i64, u32, u64, f64);
impl<T: Serialize> IntoPayload for Json<T> {
    fn into_payload(self) -> Result<Bytes, ChaincodeError> {
        serde_json::to_vec(&self.0)
            .map(Bytes::from)
            .map_err(|e| ChaincodeError::msg(format!("cannot encode the result as JSON: {e}")))
    }
}

#[derive(Clone)]
struct Transaction {
    run: TxFn,
    submit: bool,
    params: usize,
}

/// A named set of transaction functions; implements [`Chaincode`].
#[derive(Clone, Default)]
pub struct Contract {
    name: String,
    transactions: BTreeMap<String, Transaction>,
    init: Option<Transaction>,
    before: Option<HookFn>,
    after: Option<HookFn>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract")
            .field("name", &self.name)
            .field(
                "transactions",
                &self.transactions.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn wrap<A, R, F, Fut>(f: F) -> TxFn
where
    A: FromArgs + Send + 'static,
    R: IntoPayload + 'static,
    F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ChaincodeError>> + Send + 'static,
{
    let f = Arc::new(f);
    Arc::new(move |ctx: Ctx, args: Vec<Bytes>| {
        let f = f.clone();
        Box::pin(async move {
            if args.len() != A::COUNT {
                return Err(ChaincodeError::InvalidArgument(format!(
                    "{} expects {} argument(s), got {}",
                    ctx.function(),
                    A::COUNT,
                    args.len()
                )));
            }
            let parsed = A::from_args(&args)
                .map_err(|e| ChaincodeError::InvalidArgument(format!("{}: {e}", ctx.function())))?;
            f(ctx, parsed).await?.into_payload()
        })
    })
}

impl Contract {
    /// A contract named `name` (the prefix in `name:Function`).
    pub fn new(name: impl Into<String>) -> Self {
        Contract {
            name: name.into(),
            ..Contract::default()
        }
    }

    /// A transaction function that changes the ledger (submitted for ordering).
    pub fn submit<A, R, F, Fut>(self, name: &str, f: F) -> Self
    where
        A: FromArgs + Send + 'static,
        R: IntoPayload + 'static,
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ChaincodeError>> + Send + 'static,
    {
        self.add(name, wrap(f), true, A::COUNT)
    }

    /// A transaction function that only reads (evaluated, not submitted).
    pub fn evaluate<A, R, F, Fut>(self, name: &str, f: F) -> Self
    where
        A: FromArgs + Send + 'static,
        R: IntoPayload + 'static,
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ChaincodeError>> + Send + 'static,
    {
        self.add(name, wrap(f), false, A::COUNT)
    }

    /// What runs when the peer sends INIT (a chaincode defined with `--init-required`). Without
    /// it, INIT is dispatched by function name like any transaction.
    pub fn on_init<A, R, F, Fut>(mut self, f: F) -> Self
    where
        A: FromArgs + Send + 'static,
        R: IntoPayload + 'static,
        F: Fn(Ctx, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ChaincodeError>> + Send + 'static,
    {
        self.init = Some(Transaction {
            run: wrap(f),
            submit: true,
            params: A::COUNT,
        });
        self
    }

    /// Runs before every transaction function; an error stops the transaction.
    pub fn before<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ChaincodeError>> + Send + 'static,
    {
        self.before = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// Runs after every successful transaction function; an error fails the transaction.
    pub fn after<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ChaincodeError>> + Send + 'static,
    {
        self.after = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    fn add(mut self, name: &str, run: TxFn, submit: bool, params: usize) -> Self {
        self.transactions.insert(
            name.to_owned(),
            Transaction {
                run,
                submit,
                params,
            },
        );
        self
    }

    /// The contract's description, in the shape fabric-contract-api returns for
    /// `org.hyperledger.fabric:GetMetadata`.
    pub fn metadata(&self) -> serde_json::Value {
        let transactions: Vec<_> = self
            .transactions
            .iter()
            .map(|(name, tx)| {
                serde_json::json!({
                    "name": name,
                    "tag": [if tx.submit { "submit" } else { "evaluate" }],
                    "parameters": (0..tx.params).map(|i| serde_json::json!({"name": format!("arg{i}")})).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "$schema": "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json",
            "contracts": { &self.name: { "name": &self.name, "transactions": transactions } },
            "info": { "title": &self.name, "version": env!("CARGO_PKG_VERSION") },
            "components": {},
        })
    }

    async fn dispatch(&self, stub: Stub, init: bool) -> Response {
        let (function, args) = match stub.args().split_first() {
            Some((f, rest)) => (String::from_utf8_lossy(f).into_owned(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let bare = match function.split_once(':') {
            Some((contract, f)) if contract == self.name => f.to_owned(),
            _ => function.clone(),
        };
        if bare == GET_METADATA || function == GET_METADATA {
            return Response::success(self.metadata().to_string());
        }
        let tx = match (init, &self.init) {
            (true, Some(init_tx)) => Some(init_tx.clone()),
            _ => self.transactions.get(&bare).cloned(),
        };
        let Some(tx) = tx else {
            let known = self
                .transactions
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return Response::error(format!(
                "contract {} has no transaction function {function:?}; it has: {known}",
                self.name
            ));
        };
        let ctx = Ctx {
            stub,
            function: Arc::from(bare.as_str()),
        };
        let result = async {
            if let Some(before) = &self.before {
                before(ctx.clone()).await?;
            }
            let payload = (tx.run)(ctx.clone(), args).await?;
            if let Some(after) = &self.after {
                after(ctx.clone()).await?;
            }
            Ok::<_, ChaincodeError>(payload)
        }
        .await;
        match result {
            Ok(payload) => Response::success(payload),
            Err(e) => {
                tracing::debug!(function = %bare, "transaction function failed: {e}");
                Response::error(e.to_string())
            }
        }
    }
}

impl Chaincode for Contract {
    async fn init(&self, stub: Stub) -> Response {
        self.dispatch(stub, true).await
    }

    async fn invoke(&self, stub: Stub) -> Response {
        self.dispatch(stub, false).await
    }
}
