//! Fabric's policies: signature policies, their DSL, their evaluation against validated
//! identities, and implicit meta policies.
//!
//! # The DSL
//!
//! [`parse`] compiles the policy language that `peer lifecycle chaincode
//! --signature-policy` and `configtx.yaml` (`Type: Signature`) accept into the
//! `common.SignaturePolicyEnvelope` Fabric's compiler produces, byte for byte:
//!
//! ```text
//! AND('Org1MSP.member', 'Org2MSP.peer')
//! OR('Org1MSP.admin', AND("Org2MSP.client", 'Org3MSP.peer'))
//! OutOf(2, 'A.member', 'B.member', 'C.admin')
//! ```
//!
//! - gates: `AND`/`And`/`and` (all of), `OR`/`Or`/`or` (one of), `OutOf`/`OUTOF`/`outof`
//!   (`OutOf(t, ...)`: at least `t` of; `t` a whole number, optionally quoted, from 0 to the
//!   number of rules plus one, the latter never satisfied);
//! - principals `'MSPID.role'` in single or double quotes, the MSP ID made of ASCII letters,
//!   digits, `.` and `-`, the role `member`, `admin`, `client`, `peer` or `orderer`;
//! - any whitespace between tokens; gates nest (at most [`MAX_DSL_NESTING`] deep).
//!
//! The envelope has version 0 and one identity (an `MSPRole` principal) per principal
//! *occurrence*: like Fabric's compiler, identities are not deduplicated, and they are numbered
//! gate by gate after the gates nested in them, so `OR('A.member', AND('B.member',
//! 'C.member'))` lists B, C, A and reads `OutOf(1, signed_by 2, OutOf(2, signed_by 0, signed_by
//! 1))`. The exact bytes matter: chaincode definitions and channel configs carry them.
//!
//! Differences from Fabric's parser (which evaluates the text as a `govaluate` expression):
//! weft rejects fractional thresholds (Fabric truncates `1.5` to 1), a closing quote that differs
//! from the opening one, escape sequences, and strings that are themselves policy text.
//!
//! [`to_dsl`] prints an envelope back; for an envelope in the compiler's form (any output of
//! [`parse`]) `parse(to_dsl(e)) == e`, and for any other printable envelope the result is an
//! equivalent policy.
//!
//! # Evaluation
//!
//! [`CompiledPolicy::evaluate`] follows Fabric's `cauthdsl` exactly, since peers must agree on
//! every validation result:
//!
//! - identities are deduplicated first (same MSP, same certificate), keeping the first;
//! - a `signed_by` leaf takes the first identity not used yet that satisfies its principal and
//!   marks it used: one identity satisfies at most one leaf;
//! - an `n_out_of` gate evaluates *every* rule in order, each on a copy of the used marks, and
//!   keeps the marks of the rules that were satisfied; it holds when at least `n` were. The
//!   matching is greedy and order dependent, with no backtracking: `AND('Org1MSP.member',
//!   'Org1MSP.peer')` fails for the signers \[peer, client\] (the peer is taken as the member)
//!   and holds for \[client, peer\].
//!
//! Principals: `MEMBER` is any valid identity of the MSP; `ADMIN`, `CLIENT`, `PEER` and
//! `ORDERER` match the identity's [`Role`] (NodeOU role, or admin by `admincerts/`), so without
//! NodeOUs only `MEMBER` and `ADMIN` can be satisfied. `IDENTITY` principals match the same
//! certificate of the same MSP. `ORGANIZATION_UNIT`, `ANONYMITY` and `COMBINED` principals are
//! not supported and satisfied by no one (the error says so).
//!
//! # Implicit meta policies
//!
//! [`evaluate_implicit_meta`] combines the results of the sub-policies of the child groups:
//! `ANY` needs one, `ALL` all, `MAJORITY` more than half; with no sub-policies it holds.

use std::collections::HashSet;
use std::fmt;

use prost::Message as _;
pub use weft_proto::common::implicit_meta_policy::Rule as ImplicitMetaRule;
pub use weft_proto::common::msp_role::MspRoleType;
use weft_proto::common::signature_policy::{NOutOf, Type as RuleType};
use weft_proto::common::{
    msp_principal::Classification, policy::PolicyType, ImplicitMetaPolicy, MspPrincipal, MspRole,
    OrganizationUnit, Policy, SignaturePolicy, SignaturePolicyEnvelope,
};

use crate::msp::{CertTime, MspManager, Role, ValidatedIdentity};

/// How deeply [`parse`] lets gates nest. Deeper envelopes would also exceed what protobuf
/// decoders accept by default.
pub const MAX_DSL_NESTING: usize = 32;

/// How deeply a compiled envelope's gates may nest (more than any decodable envelope has).
const MAX_RULE_NESTING: usize = 64;

// ---------------------------------------------------------------------------------------------
// Errors

/// A DSL text that does not parse: where, what was expected there, and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy at column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Byte offset in the text.
    pub offset: usize,
    /// 1-based character column (same as `offset + 1` for ASCII text).
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// Why a policy cannot be used, or why identities do not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy is malformed; Fabric refuses such a policy as well.
    #[error("invalid policy: {detail}")]
    Invalid { detail: String },

    /// The signers do not satisfy the policy. The explanation names the gate that failed, the
    /// rules that were satisfied and by whom, and why the others were not.
    #[error("policy not satisfied: {explanation}")]
    NotSatisfied { explanation: String },
}

fn invalid(detail: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Building envelopes

/// `SignaturePolicy{signed_by: index}`.
pub fn signed_by(index: i32) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(RuleType::SignedBy(index)),
    }
}

/// `SignaturePolicy{n_out_of: {n, rules}}`.
pub fn n_out_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(RuleType::NOutOf(NOutOf { n, rules })),
    }
}

/// An `MSPPrincipal` of classification `ROLE` for `msp_id` and `role`, as Fabric builds them.
pub fn role_principal(msp_id: &str, role: MspRoleType) -> MspPrincipal {
    MspPrincipal {
        principal_classification: Classification::Role as i32,
        principal: MspRole {
            msp_identifier: msp_id.to_owned(),
            role: role as i32,
        }
        .encode_to_vec()
        .into(),
    }
}

/// A version-0 envelope.
pub fn envelope(rule: SignaturePolicy, identities: Vec<MspPrincipal>) -> SignaturePolicyEnvelope {
    SignaturePolicyEnvelope {
        version: 0,
        rule: Some(rule),
        identities,
    }
}

fn role_name(role: MspRoleType) -> &'static str {
    match role {
        MspRoleType::Member => "member",
        MspRoleType::Admin => "admin",
        MspRoleType::Client => "client",
        MspRoleType::Peer => "peer",
        MspRoleType::Orderer => "orderer",
    }
}

fn role_from_name(name: &str) -> Option<MspRoleType> {
    Some(match name {
        "member" => MspRoleType::Member,
        "admin" => MspRoleType::Admin,
        "client" => MspRoleType::Client,
        "peer" => MspRoleType::Peer,
        "orderer" => MspRoleType::Orderer,
        _ => return None,
    })
}

fn is_msp_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '-'
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// The parsed DSL, before identities are numbered.
enum Expr {
    Principal { msp_id: String, role: MspRoleType },
    Gate { n: i32, args: Vec<Expr> },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GateKind {
    And,
    Or,
    OutOf,
}

/// Compile a DSL policy to the envelope Fabric's compiler (`policydsl.FromString`) produces.
pub fn parse(text: &str) -> Result<SignaturePolicyEnvelope, ParseError> {
    let mut p = Parser { src: text, pos: 0 };
    p.skip_ws();
    if matches!(p.peek(), Some('\'' | '"')) {
        return Err(p.error(
            p.pos,
            "AND(, OR( or OutOf( (a policy is a gate, even around a single principal)",
            "a quoted principal",
        ));
    }
    let expr = p.gate(1)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.error(
            p.pos,
            "the end of the policy after its closing ')'",
            p.found(),
        ));
    }
    let mut identities = Vec::new();
    let rule = lower(&expr, &mut identities);
    Ok(envelope(rule, identities))
}

/// Number identities as Fabric's compiler does: within a gate, the identities of its nested
/// gates first (in order), then its own principals (in order).
fn lower(expr: &Expr, identities: &mut Vec<MspPrincipal>) -> SignaturePolicy {
    match expr {
        Expr::Principal { msp_id, role } => {
            let index = identities.len() as i32;
            identities.push(role_principal(msp_id, *role));
            signed_by(index)
        }
        Expr::Gate { n, args } => {
            let mut rules: Vec<Option<SignaturePolicy>> = args
                .iter()
                .map(|arg| match arg {
                    Expr::Gate { .. } => Some(lower(arg, identities)),
                    Expr::Principal { .. } => None,
                })
                .collect();
            for (slot, arg) in rules.iter_mut().zip(args) {
                if let Expr::Principal { .. } = arg {
                    *slot = Some(lower(arg, identities));
                }
            }
            n_out_of(*n, rules.into_iter().flatten().collect())
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Consume characters while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.src.get(start..self.pos).unwrap_or_default()
    }

    fn column(&self, offset: usize) -> usize {
        self.src.get(..offset).map_or(offset, |s| s.chars().count()) + 1
    }

    fn error(
        &self,
        offset: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ParseError {
        ParseError {
            offset,
            column: self.column(offset),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// What is at the current position, for errors: a word, a character or the end.
    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "the end of the text".to_owned(),
            Some(c) if c.is_alphanumeric() || c == '_' => {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .take(40)
                    .collect();
                format!("'{word}'")
            }
            Some('\'') => "\"'\"".to_owned(),
            Some(c) => format!("'{c}'"),
        }
    }

    fn expect(&mut self, c: char, expected: &str) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(self.pos, expected, self.found()))
        }
    }

    /// `NAME ( args )` at the current position, `depth` being its nesting level (1 at the top).
    fn gate(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let start = self.pos;
        let name = self
            .take_while(|c| c.is_alphanumeric() || c == '_')
            .to_owned();
        if name.is_empty() {
            return Err(self.error(start, "AND(, OR( or OutOf(", self.found()));
        }
        let kind = match name.as_str() {
            "AND" | "And" | "and" => GateKind::And,
            "OR" | "Or" | "or" => GateKind::Or,
            "OUTOF" | "OutOf" | "outof" => GateKind::OutOf,
            _ => {
                let expected = if self.peek() == Some('.') {
                    "a gate, or a principal in quotes: principals are quoted, as in 'Org1MSP.member'"
                } else {
                    "a gate: AND, OR or OutOf (all capitals, all lower case, or as written here)"
                };
                return Err(self.error(start, expected, format!("'{name}'")));
            }
        };
        if depth > MAX_DSL_NESTING {
            return Err(self.error(
                start,
                format!("at most {MAX_DSL_NESTING} nested gates"),
                format!("{name} nested {depth} deep"),
            ));
        }
        self.skip_ws();
        self.expect('(', &format!("'(' after {name}"))?;
        self.skip_ws();

        let threshold = if kind == GateKind::OutOf {
            let at = self.pos;
            let t = self.threshold()?;
            self.skip_ws();
            if self.peek() == Some(')') {
                return Err(self.error(
                    self.pos,
                    "',' and at least one principal or gate after OutOf's threshold",
                    "')'",
                ));
            }
            self.expect(',', "',' after OutOf's threshold")?;
            Some((t, at))
        } else {
            if self.peek() == Some(')') {
                return Err(self.error(
                    self.pos,
                    format!("a principal or a nested gate ({name} needs at least one)"),
                    "')'",
                ));
            }
            None
        };

        let mut args = Vec::new();
        loop {
            args.push(self.arg(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.bump(),
                Some(')') => {
                    self.bump();
                    break;
                }
                _ => {
                    return Err(self.error(
                        self.pos,
                        format!("',' or the ')' closing {name}"),
                        self.found(),
                    ))
                }
            }
        }

        let n = match (kind, threshold) {
            (GateKind::OutOf, Some((t, at))) => {
                let max = args.len() as u64 + 1;
                if t > max {
                    return Err(self.error(
                        at,
                        format!(
                            "a threshold from 0 to {max} for {} rule{} ({max}: never satisfied)",
                            args.len(),
                            plural(args.len())
                        ),
                        t.to_string(),
                    ));
                }
                i32::try_from(t).map_err(|_| {
                    self.error(at, "a threshold that fits in 32 bits", t.to_string())
                })?
            }
            (GateKind::Or, _) => 1,
            _ => i32::try_from(args.len())
                .map_err(|_| self.error(start, "fewer than 2^31 rules", args.len().to_string()))?,
        };
        Ok(Expr::Gate { n, args })
    }

    /// OutOf's threshold: a whole number, bare or quoted.
    fn threshold(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.bump();
                Some(q)
            }
            Some(c) if c.is_ascii_digit() => None,
            _ => return Err(self.error(start, "OutOf's threshold, a whole number", self.found())),
        };
        let digits_at = self.pos;
        let digits = self.take_while(|c| c.is_ascii_digit()).to_owned();
        if digits.is_empty() || self.peek() == Some('.') {
            let token: String = self
                .src
                .get(start..)
                .unwrap_or_default()
                .chars()
                .take_while(|c| !matches!(c, ',' | ')') && !c.is_whitespace())
                .take(20)
                .collect();
            let found = if token.starts_with(['\'', '"']) {
                token
            } else {
                format!("'{token}'")
            };
            return Err(self.error(digits_at, "OutOf's threshold, a whole number", found));
        }
        if let Some(q) = quote {
            self.expect(q, &format!("the closing {q} of the threshold"))?;
        }
        digits.parse::<u64>().map_err(|_| {
            self.error(
                digits_at,
                "a threshold that fits in 32 bits",
                digits.clone(),
            )
        })
    }

    /// A quoted principal or a nested gate.
    fn arg(&mut self, depth: usize) -> Result<Expr, ParseError> {
        self.skip_ws();
        match self.peek() {
            Some('\'' | '"') => self.principal(),
            Some(c) if c.is_alphabetic() => self.gate(depth + 1),
            _ => Err(self.error(
                self.pos,
                "a quoted principal such as 'Org1MSP.member', or a nested AND, OR or OutOf",
                self.found(),
            )),
        }
    }

    /// `'MSPID.role'` or `"MSPID.role"`.
    fn principal(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let Some(quote) = self.peek() else {
            return Err(self.error(start, "a quoted principal", self.found()));
        };
        self.bump();
        let content_at = self.pos;
        let Some(len) = self.rest().find(quote) else {
            return Err(self.error(
                self.src.len(),
                format!(
                    "the closing {quote} of the principal that starts at column {}",
                    self.column(start)
                ),
                "the end of the text",
            ));
        };
        let content = self
            .src
            .get(content_at..content_at + len)
            .unwrap_or_default()
            .to_owned();
        self.pos = content_at + len + quote.len_utf8();

        let shape = "a principal 'MSPID.role' (role: member, admin, client, peer or orderer)";
        let Some(dot) = content.rfind('.') else {
            return Err(self.error(content_at, shape, format!("'{content}'")));
        };
        let (msp_id, role) = (&content[..dot], &content[dot + 1..]);
        let Some(role) = role_from_name(role) else {
            return Err(self.error(
                content_at + dot + 1,
                "a role after the MSP ID's last '.': member, admin, client, peer or orderer",
                format!("'{role}'"),
            ));
        };
        if msp_id.is_empty() {
            return Err(self.error(
                content_at,
                "an MSP ID before the role",
                format!("'{content}'"),
            ));
        }
        if let Some((i, c)) = msp_id.char_indices().find(|(_, c)| !is_msp_id_char(*c)) {
            return Err(self.error(
                content_at + i,
                "an MSP ID of ASCII letters, digits, '.' and '-'",
                format!("{c:?} in '{content}'"),
            ));
        }
        Ok(Expr::Principal {
            msp_id: msp_id.to_owned(),
            role,
        })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ---------------------------------------------------------------------------------------------
// Printing

/// Print an envelope in the DSL: `AND(...)` for a gate that needs all its rules, `OR(...)` for
/// one that needs one, `OutOf(n, ...)` otherwise; principals as `'MSPID.role'`.
///
/// Fails for what the DSL cannot express: a version other than 0, principals other than
/// `ROLE` ones (or with an MSP ID the DSL does not allow), gates without rules or with a
/// threshold outside `0..=rules+1`, and malformed envelopes. A rule that is a bare `signed_by`
/// prints as `OR('...')`, an equivalent policy.
pub fn to_dsl(envelope: &SignaturePolicyEnvelope) -> Result<String, PolicyError> {
    if envelope.version != 0 {
        return Err(invalid(format!(
            "version {} cannot be written in the policy DSL (it compiles to version 0)",
            envelope.version
        )));
    }
    let rule = envelope
        .rule
        .as_ref()
        .ok_or_else(|| invalid("the envelope has no rule"))?;
    let mut out = String::new();
    if let Some(RuleType::SignedBy(_)) = rule.r#type {
        out.push_str("OR(");
        write_dsl(rule, &envelope.identities, &mut out, 1)?;
        out.push(')');
    } else {
        write_dsl(rule, &envelope.identities, &mut out, 1)?;
    }
    Ok(out)
}

fn write_dsl(
    rule: &SignaturePolicy,
    identities: &[MspPrincipal],
    out: &mut String,
    depth: usize,
) -> Result<(), PolicyError> {
    if depth > MAX_RULE_NESTING {
        return Err(invalid(format!(
            "gates nest more than {MAX_RULE_NESTING} deep"
        )));
    }
    match &rule.r#type {
        None => Err(invalid("a rule with neither signed_by nor n_out_of")),
        Some(RuleType::SignedBy(index)) => {
            let principal = usize::try_from(*index)
                .ok()
                .and_then(|i| identities.get(i))
                .ok_or_else(|| out_of_range(*index, identities.len()))?;
            let (msp_id, role) = dsl_principal(principal, *index)?;
            out.push('\'');
            out.push_str(&msp_id);
            out.push('.');
            out.push_str(role_name(role));
            out.push('\'');
            Ok(())
        }
        Some(RuleType::NOutOf(gate)) => {
            let len = gate.rules.len();
            if len == 0 {
                return Err(invalid(format!(
                    "OutOf({}) without rules cannot be written in the policy DSL",
                    gate.n
                )));
            }
            let n = usize::try_from(gate.n)
                .ok()
                .filter(|n| *n <= len + 1)
                .ok_or_else(|| {
                    invalid(format!(
                        "OutOf({}) over {len} rule{} cannot be written in the policy DSL (the threshold must be from 0 to {})",
                        gate.n,
                        plural(len),
                        len + 1
                    ))
                })?;
            if n == len {
                out.push_str("AND(");
            } else if n == 1 {
                out.push_str("OR(");
            } else {
                out.push_str(&format!("OutOf({n}, "));
            }
            for (i, r) in gate.rules.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_dsl(r, identities, out, depth + 1)?;
            }
            out.push(')');
            Ok(())
        }
    }
}

fn out_of_range(index: i32, len: usize) -> PolicyError {
    invalid(format!(
        "signed_by {index} is out of range: the envelope has {len} identit{}",
        if len == 1 { "y" } else { "ies" }
    ))
}

/// The MSP ID and role of a `ROLE` principal the DSL can write.
fn dsl_principal(p: &MspPrincipal, index: i32) -> Result<(String, MspRoleType), PolicyError> {
    if p.principal_classification != Classification::Role as i32 {
        let kind = Classification::try_from(p.principal_classification)
            .map(|c| c.as_str_name().to_owned())
            .unwrap_or_else(|_| format!("classification {}", p.principal_classification));
        return Err(invalid(format!(
            "identity {index} is not an MSP role principal but {kind}; the policy DSL has only MSP roles"
        )));
    }
    let role = MspRole::decode(p.principal.as_ref())
        .map_err(|e| invalid(format!("identity {index}: malformed MSPRole: {e}")))?;
    let kind = MspRoleType::try_from(role.role).map_err(|_| {
        invalid(format!(
            "identity {index}: unknown MSP role type {}",
            role.role
        ))
    })?;
    if role.msp_identifier.is_empty() || !role.msp_identifier.chars().all(is_msp_id_char) {
        return Err(invalid(format!(
            "identity {index}: MSP ID '{}' cannot be written in the policy DSL (ASCII letters, digits, '.' and '-' only)",
            role.msp_identifier
        )));
    }
    Ok((role.msp_identifier, kind))
}

// ---------------------------------------------------------------------------------------------
// Compiled policies

/// A principal as evaluation uses it.
#[derive(Debug, Clone)]
enum Principal {
    Role {
        msp_id: String,
        role: MspRoleType,
    },
    Identity {
        msp_id: String,
        cert_der: Vec<u8>,
        label: String,
    },
    /// Satisfied by no identity: unsupported or malformed.
    Never {
        label: String,
        reason: String,
    },
}

impl Principal {
    fn decode(p: &MspPrincipal, index: usize) -> Principal {
        let never = |label: String, reason: String| Principal::Never { label, reason };
        match Classification::try_from(p.principal_classification) {
            Ok(Classification::Role) => match MspRole::decode(p.principal.as_ref()) {
                Ok(r) => match MspRoleType::try_from(r.role) {
                    Ok(role) => Principal::Role {
                        msp_id: r.msp_identifier,
                        role,
                    },
                    Err(_) => never(
                        format!("{}.<role {}>", r.msp_identifier, r.role),
                        format!("unknown MSP role type {}", r.role),
                    ),
                },
                Err(e) => never(
                    format!("identity #{index}"),
                    format!("malformed MSPRole principal: {e}"),
                ),
            },
            Ok(Classification::Identity) => {
                match weft_proto::msp::SerializedIdentity::decode(p.principal.as_ref()) {
                    Ok(sid) => {
                        let cert = weft_crypto::pem::certificates(&sid.id_bytes, "principal")
                            .ok()
                            .and_then(|c| c.into_iter().next());
                        match cert {
                            Some(der) => {
                                let name = weft_crypto::CertSummary::parse(&der)
                                    .ok()
                                    .and_then(|s| s.common_name)
                                    .unwrap_or_else(|| {
                                        weft_crypto::hex(&weft_crypto::sha256(&der))
                                    });
                                Principal::Identity {
                                    label: format!("identity {} '{name}'", sid.mspid),
                                    msp_id: sid.mspid,
                                    cert_der: der.to_vec(),
                                }
                            }
                            None => never(
                                format!("identity {}", sid.mspid),
                                "the IDENTITY principal holds no certificate".to_owned(),
                            ),
                        }
                    }
                    Err(e) => never(
                        format!("identity #{index}"),
                        format!("malformed IDENTITY principal: {e}"),
                    ),
                }
            }
            Ok(Classification::OrganizationUnit) => {
                let label = OrganizationUnit::decode(p.principal.as_ref())
                    .map(|ou| {
                        format!(
                            "{} OU '{}'",
                            ou.msp_identifier, ou.organizational_unit_identifier
                        )
                    })
                    .unwrap_or_else(|_| format!("identity #{index}"));
                never(
                    label,
                    "ORGANIZATION_UNIT principals are not supported by weft".to_owned(),
                )
            }
            Ok(c @ (Classification::Anonymity | Classification::Combined)) => never(
                format!("{} principal #{index}", c.as_str_name()),
                format!("{} principals are not supported by weft", c.as_str_name()),
            ),
            Err(_) => never(
                format!("identity #{index}"),
                format!(
                    "unknown principal classification {}",
                    p.principal_classification
                ),
            ),
        }
    }

    fn satisfied_by(&self, id: &ValidatedIdentity) -> bool {
        match self {
            Principal::Role { msp_id, role } => {
                id.msp_id == *msp_id
                    && match role {
                        MspRoleType::Member => true,
                        MspRoleType::Admin => id.role == Role::Admin,
                        MspRoleType::Client => id.role == Role::Client,
                        MspRoleType::Peer => id.role == Role::Peer,
                        MspRoleType::Orderer => id.role == Role::Orderer,
                    }
            }
            Principal::Identity {
                msp_id, cert_der, ..
            } => id.msp_id == *msp_id && *id.certificate == **cert_der,
            Principal::Never { .. } => false,
        }
    }

    fn label(&self) -> String {
        match self {
            Principal::Role { msp_id, role } => format!("{msp_id}.{}", role_name(*role)),
            Principal::Identity { label, .. } | Principal::Never { label, .. } => label.clone(),
        }
    }
}

#[derive(Debug, Clone)]
enum Rule {
    SignedBy(usize),
    NOutOf { n: i32, rules: Vec<Rule> },
}

impl Rule {
    fn from_proto(
        p: &SignaturePolicy,
        identities: usize,
        depth: usize,
    ) -> Result<Rule, PolicyError> {
        if depth > MAX_RULE_NESTING {
            return Err(invalid(format!(
                "gates nest more than {MAX_RULE_NESTING} deep"
            )));
        }
        match &p.r#type {
            None => Err(invalid(
                "empty policy element: a rule with neither signed_by nor n_out_of",
            )),
            Some(RuleType::SignedBy(index)) => usize::try_from(*index)
                .ok()
                .filter(|i| *i < identities)
                .map(Rule::SignedBy)
                .ok_or_else(|| out_of_range(*index, identities)),
            Some(RuleType::NOutOf(gate)) => Ok(Rule::NOutOf {
                n: gate.n,
                rules: gate
                    .rules
                    .iter()
                    .map(|r| Rule::from_proto(r, identities, depth + 1))
                    .collect::<Result<_, _>>()?,
            }),
        }
    }
}

/// What one rule's evaluation did, recorded to explain a failure.
enum Trace {
    Leaf {
        signer: Option<usize>,
        /// Why no identity was found, when none was.
        hint: String,
    },
    Gate {
        ok: bool,
        verified: i64,
        children: Vec<Trace>,
    },
}

impl Trace {
    fn ok(&self) -> bool {
        match self {
            Trace::Leaf { signer, .. } => signer.is_some(),
            Trace::Gate { ok, .. } => *ok,
        }
    }

    /// The identities a satisfied rule took.
    fn signers(&self, out: &mut Vec<usize>) {
        match self {
            Trace::Leaf {
                signer: Some(i), ..
            } => out.push(*i),
            Trace::Leaf { signer: None, .. } => {}
            Trace::Gate { children, .. } => {
                for c in children.iter().filter(|c| c.ok()) {
                    c.signers(out);
                }
            }
        }
    }
}

/// One signature of a signature set: the serialized identity (`msp.SerializedIdentity`), the
/// signed bytes and the signature, as in Fabric's `SignedData`.
#[derive(Debug, Clone, Copy)]
pub struct SignedData<'a> {
    pub identity: &'a [u8],
    pub data: &'a [u8],
    pub signature: &'a [u8],
}

/// A signature of a set that does not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSignature {
    /// Position in the signature set.
    pub index: usize,
    pub reason: String,
}

/// The identities behind a signature set: valid, deduplicated, with good signatures.
#[derive(Debug, Clone, Default)]
pub struct Signers {
    pub identities: Vec<ValidatedIdentity>,
    pub rejected: Vec<RejectedSignature>,
}

/// Fabric's `SignatureSetToValidIdentities`: in order, deserialize and validate each identity
/// with `manager` (now), skip an identity already counted (same MSP and certificate) before
/// checking its signature, and keep it only if its signature of the data verifies. Everything
/// skipped is in [`Signers::rejected`].
pub fn valid_signers(manager: &MspManager, signed: &[SignedData<'_>]) -> Signers {
    valid_signers_at(manager, signed, CertTime::Now)
}

/// [`valid_signers`] with certificates checked at `when` ([`CertTime::Issuance`] for
/// signatures read from blocks).
pub fn valid_signers_at(
    manager: &MspManager,
    signed: &[SignedData<'_>],
    when: CertTime,
) -> Signers {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut out = Signers::default();
    for (index, sd) in signed.iter().enumerate() {
        let id = match manager.deserialize_when(sd.identity, when) {
            Ok(id) => id,
            Err(e) => {
                out.rejected.push(RejectedSignature {
                    index,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let key = (id.msp_id.clone(), id.fingerprint.clone());
        if seen.contains(&key) {
            out.rejected.push(RejectedSignature {
                index,
                reason: format!("duplicate of an earlier signer, {}", who(&id)),
            });
            continue;
        }
        if let Err(e) = weft_crypto::sign::verify(&id.public_key, sd.data, sd.signature) {
            out.rejected.push(RejectedSignature {
                index,
                reason: format!("signature by {} refused: {e}", who(&id)),
            });
            continue;
        }
        seen.insert(key);
        out.identities.push(id);
    }
    out
}

/// A signature policy ready to evaluate: the envelope checked once, its principals decoded.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    rule: Rule,
    principals: Vec<Principal>,
}

impl CompiledPolicy {
    /// Check an envelope as Fabric does when it builds the policy: version 0, a rule, every
    /// rule either `signed_by` an existing identity or `n_out_of`. Principals are not checked
    /// here; one that is malformed or unsupported is satisfied by no one.
    pub fn new(envelope: &SignaturePolicyEnvelope) -> Result<CompiledPolicy, PolicyError> {
        if envelope.version != 0 {
            return Err(invalid(format!(
                "signature policy envelope version {}; only version 0 is understood",
                envelope.version
            )));
        }
        let rule = envelope
            .rule
            .as_ref()
            .ok_or_else(|| invalid("empty policy element: the envelope has no rule"))?;
        let rule = Rule::from_proto(rule, envelope.identities.len(), 1)?;
        let principals = envelope
            .identities
            .iter()
            .enumerate()
            .map(|(i, p)| Principal::decode(p, i))
            .collect();
        Ok(CompiledPolicy { rule, principals })
    }

    /// [`CompiledPolicy::new`] from `SignaturePolicyEnvelope` bytes (a `Policy.value` of type
    /// `SIGNATURE`).
    pub fn from_bytes(bytes: &[u8]) -> Result<CompiledPolicy, PolicyError> {
        let envelope = SignaturePolicyEnvelope::decode(bytes)
            .map_err(|e| invalid(format!("not a SignaturePolicyEnvelope: {e}")))?;
        CompiledPolicy::new(&envelope)
    }

    /// Whether `identities` satisfy the policy (see the module documentation for the rules).
    /// Duplicates (same MSP and certificate) count once.
    pub fn evaluate(&self, identities: &[ValidatedIdentity]) -> Result<(), PolicyError> {
        self.evaluate_with(&dedup(identities), &[])
    }

    /// Whether `identities` satisfy the policy: [`CompiledPolicy::evaluate`] without building
    /// an explanation, for the hot paths where a failure is then explained by `evaluate`.
    pub fn is_satisfied(&self, identities: &[ValidatedIdentity]) -> bool {
        let ids = dedup(identities);
        let mut used = vec![false; ids.len()];
        self.eval(&self.rule, &ids, &mut used, None)
    }

    /// Evaluate a signature set: [`valid_signers`], then [`CompiledPolicy::evaluate`]. A
    /// failure also lists the signatures that did not count.
    pub fn evaluate_signed_data(
        &self,
        manager: &MspManager,
        signed: &[SignedData<'_>],
    ) -> Result<(), PolicyError> {
        let signers = valid_signers(manager, signed);
        let ids: Vec<&ValidatedIdentity> = signers.identities.iter().collect();
        self.evaluate_with(&ids, &signers.rejected)
    }

    fn evaluate_with(
        &self,
        ids: &[&ValidatedIdentity],
        rejected: &[RejectedSignature],
    ) -> Result<(), PolicyError> {
        let mut used = vec![false; ids.len()];
        if self.eval(&self.rule, ids, &mut used, None) {
            return Ok(());
        }
        Err(self.explain(ids, rejected))
    }

    /// Fabric's evaluation: `used` marks the identities already taken by a leaf.
    fn eval(
        &self,
        rule: &Rule,
        ids: &[&ValidatedIdentity],
        used: &mut [bool],
        trace: Option<&mut Vec<Trace>>,
    ) -> bool {
        match rule {
            Rule::SignedBy(p) => {
                let Some(principal) = self.principals.get(*p) else {
                    return false;
                };
                let found = ids
                    .iter()
                    .enumerate()
                    .find(|(i, id)| !used[*i] && principal.satisfied_by(id))
                    .map(|(i, _)| i);
                if let Some(trace) = trace {
                    let hint = match found {
                        Some(_) => String::new(),
                        None => hint(principal, ids),
                    };
                    trace.push(Trace::Leaf {
                        signer: found,
                        hint,
                    });
                }
                match found {
                    Some(i) => {
                        used[i] = true;
                        true
                    }
                    None => false,
                }
            }
            Rule::NOutOf { n, rules } => {
                let mut verified: i64 = 0;
                let mut scratch = vec![false; used.len()];
                let mut children = trace.as_ref().map(|_| Vec::with_capacity(rules.len()));
                for r in rules {
                    scratch.copy_from_slice(used);
                    if self.eval(r, ids, &mut scratch, children.as_mut()) {
                        verified += 1;
                        used.copy_from_slice(&scratch);
                    }
                }
                let ok = verified >= i64::from(*n);
                if let (Some(trace), Some(children)) = (trace, children) {
                    trace.push(Trace::Gate {
                        ok,
                        verified,
                        children,
                    });
                }
                ok
            }
        }
    }

    fn explain(&self, ids: &[&ValidatedIdentity], rejected: &[RejectedSignature]) -> PolicyError {
        let mut used = vec![false; ids.len()];
        let mut trace = Vec::new();
        self.eval(&self.rule, ids, &mut used, Some(&mut trace));
        let mut explanation = trace
            .first()
            .map(|t| self.failure(&self.rule, t, ids))
            .unwrap_or_default();
        if ids.is_empty() {
            explanation.push_str("; no valid signers");
        } else {
            explanation.push_str(&format!(
                "; {} signer{}: {}",
                ids.len(),
                plural(ids.len()),
                ids.iter().map(|id| who(id)).collect::<Vec<_>>().join(", ")
            ));
        }
        if !rejected.is_empty() {
            explanation.push_str(&format!(
                "; not counted: {}",
                rejected
                    .iter()
                    .map(|r| format!("signature {}: {}", r.index, r.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        PolicyError::NotSatisfied { explanation }
    }

    /// Why a rule that failed failed.
    fn failure(&self, rule: &Rule, trace: &Trace, ids: &[&ValidatedIdentity]) -> String {
        match (rule, trace) {
            (Rule::SignedBy(_), Trace::Leaf { hint, .. }) => {
                format!("missing {} ({hint})", self.label(rule))
            }
            (
                Rule::NOutOf { n, rules },
                Trace::Gate {
                    verified, children, ..
                },
            ) => {
                let labels: Vec<String> = rules.iter().map(|r| self.label(r)).collect();
                let parts: Vec<String> = rules
                    .iter()
                    .zip(children)
                    .map(|(r, c)| {
                        if c.ok() {
                            self.success(r, c, ids)
                        } else if let Rule::SignedBy(_) = r {
                            self.failure(r, c, ids)
                        } else {
                            format!("missing {} ({})", self.label(r), self.failure(r, c, ids))
                        }
                    })
                    .collect();
                let mut s = format!(
                    "OutOf({n}) satisfied by {verified} of [{}]",
                    labels.join(", ")
                );
                if !parts.is_empty() {
                    s.push_str(": ");
                    s.push_str(&parts.join("; "));
                }
                s
            }
            _ => String::new(),
        }
    }

    /// Who satisfied a rule that held.
    fn success(&self, rule: &Rule, trace: &Trace, ids: &[&ValidatedIdentity]) -> String {
        let mut signers = Vec::new();
        trace.signers(&mut signers);
        let names: Vec<String> = signers
            .iter()
            .filter_map(|i| ids.get(*i))
            .map(|id| who(id))
            .collect();
        match rule {
            Rule::SignedBy(_) => format!("{} signed by {}", self.label(rule), names.join(", ")),
            Rule::NOutOf { .. } if names.is_empty() => format!("{} satisfied", self.label(rule)),
            Rule::NOutOf { .. } => {
                format!("{} satisfied by {}", self.label(rule), names.join(", "))
            }
        }
    }

    /// A rule in DSL-like form with unquoted principals, for messages.
    fn label(&self, rule: &Rule) -> String {
        match rule {
            Rule::SignedBy(p) => self
                .principals
                .get(*p)
                .map_or_else(|| format!("identity #{p}"), Principal::label),
            Rule::NOutOf { n, rules } => {
                let inner: Vec<String> = rules.iter().map(|r| self.label(r)).collect();
                let len = rules.len();
                if len > 0 && usize::try_from(*n).is_ok_and(|n| n == len) {
                    format!("AND({})", inner.join(", "))
                } else if len > 0 && *n == 1 {
                    format!("OR({})", inner.join(", "))
                } else if inner.is_empty() {
                    format!("OutOf({n})")
                } else {
                    format!("OutOf({n}, {})", inner.join(", "))
                }
            }
        }
    }
}

impl fmt::Display for CompiledPolicy {
    /// The policy in DSL-like form with unquoted principals, e.g.
    /// `AND(Org1MSP.peer, OR(Org2MSP.peer, Org3MSP.peer))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label(&self.rule))
    }
}

/// Evaluate `identities` against an envelope ([`CompiledPolicy::new`], then
/// [`CompiledPolicy::evaluate`]).
pub fn evaluate(
    envelope: &SignaturePolicyEnvelope,
    identities: &[ValidatedIdentity],
) -> Result<(), PolicyError> {
    CompiledPolicy::new(envelope)?.evaluate(identities)
}

/// First occurrence of each identity (same MSP, same certificate).
fn dedup(identities: &[ValidatedIdentity]) -> Vec<&ValidatedIdentity> {
    // Signature sets are small (a few endorsements): a quadratic scan beats hashing.
    let mut out: Vec<&ValidatedIdentity> = Vec::with_capacity(identities.len());
    for id in identities {
        if !out
            .iter()
            .any(|o| o.msp_id == id.msp_id && o.fingerprint == id.fingerprint)
        {
            out.push(id);
        }
    }
    out
}

/// `Org1MSP peer 'peer0.org1.example.com'`.
fn who(id: &ValidatedIdentity) -> String {
    format!("{} {} '{}'", id.msp_id, id.role, common_name(&id.subject))
}

/// The CN of an RFC 4514 subject, or the whole subject.
fn common_name(subject: &str) -> &str {
    subject
        .split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or(subject)
}

/// Why no unused identity satisfies `principal`.
fn hint(principal: &Principal, ids: &[&ValidatedIdentity]) -> String {
    let matching: Vec<String> = ids
        .iter()
        .filter(|id| principal.satisfied_by(id))
        .map(|id| who(id))
        .collect();
    if !matching.is_empty() {
        return format!(
            "{} already counted for another rule; one signature satisfies one principal",
            matching.join(", ")
        );
    }
    match principal {
        Principal::Role { msp_id, role } => {
            let same: Vec<String> = ids
                .iter()
                .filter(|id| id.msp_id == *msp_id)
                .map(|id| format!("{} '{}'", id.role, common_name(&id.subject)))
                .collect();
            if same.is_empty() {
                format!("no signer from {msp_id}")
            } else {
                let article = match role {
                    MspRoleType::Admin | MspRoleType::Orderer => "an",
                    _ => "a",
                };
                format!(
                    "no {msp_id} signer is {article} {}; {msp_id} signed as {}",
                    role_name(*role),
                    same.join(", ")
                )
            }
        }
        Principal::Identity { .. } => "not signed by that identity".to_owned(),
        Principal::Never { reason, .. } => reason.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Implicit meta policies

/// Parse `configtx.yaml`'s implicit meta rule: `"<ANY|ALL|MAJORITY> <SubPolicy>"`, two tokens
/// separated by exactly one space, the rule in capitals (as Fabric).
pub fn parse_implicit_meta(text: &str) -> Result<ImplicitMetaPolicy, ParseError> {
    let p = Parser { src: text, pos: 0 };
    let tokens: Vec<&str> = text.split(' ').collect();
    let &[rule, sub_policy] = tokens.as_slice() else {
        return Err(p.error(
            0,
            "'<ANY|ALL|MAJORITY> <sub-policy>': two tokens separated by one space",
            format!("{} token{}", tokens.len(), plural(tokens.len())),
        ));
    };
    let rule = ImplicitMetaRule::from_str_name(rule)
        .ok_or_else(|| p.error(0, "ANY, ALL or MAJORITY", format!("'{rule}'")))?;
    Ok(ImplicitMetaPolicy {
        sub_policy: sub_policy.to_owned(),
        rule: rule as i32,
    })
}

/// `"MAJORITY Admins"`; an unknown rule value prints as its number.
pub fn format_implicit_meta(policy: &ImplicitMetaPolicy) -> String {
    let rule = ImplicitMetaRule::try_from(policy.rule)
        .map(|r| r.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("RULE_{}", policy.rule));
    format!("{rule} {}", policy.sub_policy)
}

/// How many of `sub_policies` sub-policies a rule needs: 1 (`ANY`), all (`ALL`) or more than
/// half (`MAJORITY`); 0 when there are none.
pub fn implicit_meta_threshold(rule: ImplicitMetaRule, sub_policies: usize) -> usize {
    if sub_policies == 0 {
        return 0;
    }
    match rule {
        ImplicitMetaRule::Any => 1,
        ImplicitMetaRule::All => sub_policies,
        ImplicitMetaRule::Majority => sub_policies / 2 + 1,
    }
}

/// Evaluate an implicit meta policy over the sub-policies of its group's children: one
/// `(name, evaluator)` per child group (a child without the sub-policy counts as one that is
/// not satisfied, as in Fabric). Evaluators run in order and stop once the threshold
/// ([`implicit_meta_threshold`]) is reached. A failure lists every sub-policy's outcome.
pub fn evaluate_implicit_meta<I, N, F>(
    policy: &ImplicitMetaPolicy,
    sub_policies: I,
) -> Result<(), PolicyError>
where
    I: IntoIterator<Item = (N, F)>,
    N: AsRef<str>,
    F: FnOnce() -> Result<(), PolicyError>,
{
    let rule = ImplicitMetaRule::try_from(policy.rule)
        .map_err(|_| invalid(format!("unknown implicit meta rule {}", policy.rule)))?;
    let subs: Vec<(N, F)> = sub_policies.into_iter().collect();
    let total = subs.len();
    let threshold = implicit_meta_threshold(rule, total);
    if threshold == 0 {
        return Ok(());
    }
    let mut satisfied = 0;
    let mut outcomes = Vec::with_capacity(total);
    for (name, evaluate) in subs {
        let name = name.as_ref();
        match evaluate() {
            Ok(()) => {
                satisfied += 1;
                if satisfied >= threshold {
                    return Ok(());
                }
                outcomes.push(format!("{name}/{} satisfied", policy.sub_policy));
            }
            Err(e) => outcomes.push(format!("{name}/{}: {e}", policy.sub_policy)),
        }
    }
    Err(PolicyError::NotSatisfied {
        explanation: format!(
            "{} needs {threshold} of the {total} '{}' sub-policies, {satisfied} satisfied: {}",
            format_implicit_meta(policy),
            policy.sub_policy,
            outcomes.join("; ")
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// common.Policy

/// A `common.Policy` decoded by type.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    Signature(SignaturePolicyEnvelope),
    ImplicitMeta(ImplicitMetaPolicy),
}

/// Decode a `common.Policy`: `SIGNATURE` or `IMPLICIT_META` (the types Fabric's channel
/// configs use); anything else is [`PolicyError::Invalid`].
pub fn decode_policy(policy: &Policy) -> Result<PolicyKind, PolicyError> {
    match PolicyType::try_from(policy.r#type) {
        Ok(PolicyType::Signature) => SignaturePolicyEnvelope::decode(policy.value.as_ref())
            .map(PolicyKind::Signature)
            .map_err(|e| invalid(format!("SIGNATURE policy value: {e}"))),
        Ok(PolicyType::ImplicitMeta) => ImplicitMetaPolicy::decode(policy.value.as_ref())
            .map(PolicyKind::ImplicitMeta)
            .map_err(|e| invalid(format!("IMPLICIT_META policy value: {e}"))),
        Ok(other) => Err(invalid(format!(
            "policy type {} is not supported",
            other.as_str_name()
        ))),
        Err(_) => Err(invalid(format!("unknown policy type {}", policy.r#type))),
    }
}
