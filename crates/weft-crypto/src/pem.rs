//! PEM input as Fabric writes it.

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::CertificateDer;

use crate::Error;

/// All PEM sections in `input`, in order. `what` names the input in errors.
pub fn sections(input: &[u8], what: &str) -> Result<Vec<(SectionKind, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(input) {
        match item {
            Ok(section) => out.push(section),
            Err(e) => {
                return Err(Error::PemMalformed {
                    what: what.to_owned(),
                    detail: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Every `CERTIFICATE` block in `input`, leaf first as written. Fails if there is none.
pub fn certificates(input: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = sections(input, what)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err(Error::PemMissing {
            what: what.to_owned(),
            expected: "CERTIFICATE",
        });
    }
    for cert in &certs {
        crate::x509::CertSummary::parse(cert).map_err(|e| match e {
            Error::Certificate { detail, .. } => Error::cert(what, detail),
            other => other,
        })?;
    }
    Ok(certs)
}

/// One PEM block of a certificate.
pub fn encode_certificate(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

/// A PEM block with `label` around `der`, lines of 64 characters, trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_through_the_pki_types_parser() {
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let pem = encode("CERTIFICATE", &data);
            let parsed = sections(pem.as_bytes(), "test").unwrap();
            assert_eq!(parsed, vec![(SectionKind::Certificate, data)]);
        }
    }

    #[test]
    fn missing_and_malformed_input_is_named() {
        let e = certificates(b"hello", "tls/ca.crt").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("tls/ca.crt: no CERTIFICATE found"),
            "{e}"
        );
        let e = certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n", "x.pem").unwrap_err();
        assert!(e.to_string().contains("x.pem: malformed PEM"), "{e}");
        let bogus = encode("CERTIFICATE", b"not der");
        let e = certificates(bogus.as_bytes(), "y.pem").unwrap_err();
        assert!(
            e.to_string().contains("y.pem: malformed certificate"),
            "{e}"
        );
    }
}
