//! `multipart/form-data` (RFC 7578), as much as the channel participation API needs: find one
//! named field in a request body, and build a body with one file field (for `weft osnadmin`).
//!
//! The parser works on the whole body (the admin API bounds its size first). It accepts CRLF
//! line ends as the RFC says, and bare LF as lenient clients send them.

/// Why a body could not be read as multipart/form-data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("multipart/form-data: {0}")]
pub struct MultipartError(pub String);

fn err(msg: impl Into<String>) -> MultipartError {
    MultipartError(msg.into())
}

/// The `boundary` parameter of a `Content-Type: multipart/form-data; boundary=...` value.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(err(format!(
            "Content-Type is {media:?}, expected multipart/form-data"
        )));
    }
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("boundary") {
                let v = v.trim().trim_matches('"');
                if v.is_empty() || v.len() > 200 {
                    return Err(err("the boundary parameter is empty or too long"));
                }
                return Ok(v.to_owned());
            }
        }
    }
    Err(err("Content-Type has no boundary parameter"))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay.get(i..i + needle.len()) == Some(needle))
}

/// The `name` parameter of a part's `Content-Disposition: form-data; name="..."` header.
fn part_name(headers: &str) -> Option<String> {
    for line in headers.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        for p in v.split(';').skip(1) {
            if let Some((pk, pv)) = p.split_once('=') {
                if pk.trim().eq_ignore_ascii_case("name") {
                    return Some(pv.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    None
}

/// The content of the field `name` in `body`; an error if the body is malformed or the field
/// is missing.
pub fn field<'a>(body: &'a [u8], boundary: &str, name: &str) -> Result<&'a [u8], MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or_else(|| err("no boundary line in the body"))?;
    let mut seen = Vec::new();
    loop {
        let after = pos + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            break; // closing delimiter
        }
        // Skip to the end of the boundary line.
        let line_end = find(body, b"\n", after).ok_or_else(|| err("a boundary line never ends"))?;
        let headers_start = line_end + 1;
        let (headers_end, content_start) = match (
            find(body, b"\r\n\r\n", headers_start),
            find(body, b"\n\n", headers_start),
        ) {
            (Some(a), Some(b)) if b < a => (b, b + 2),
            (Some(a), _) => (a, a + 4),
            (None, Some(b)) => (b, b + 2),
            (None, None) => return Err(err("a part has no end of headers")),
        };
        let headers = std::str::from_utf8(body.get(headers_start..headers_end).unwrap_or_default())
            .map_err(|_| err("part headers are not UTF-8"))?;
        let next = find(body, delim, content_start)
            .ok_or_else(|| err("a part is not followed by a boundary (body cut short?)"))?;
        // The line break before the delimiter belongs to the delimiter.
        let mut content_end = next;
        if content_end >= content_start + 2
            && body.get(content_end - 2..content_end) == Some(b"\r\n")
        {
            content_end -= 2;
        } else if content_end > content_start && body.get(content_end - 1) == Some(&b'\n') {
            content_end -= 1;
        }
        let pname = part_name(headers);
        if pname.as_deref() == Some(name) {
            return body
                .get(content_start..content_end)
                .ok_or_else(|| err("part bounds out of range"));
        }
        seen.push(pname.unwrap_or_else(|| "(unnamed)".into()));
        pos = next;
    }
    Err(err(format!(
        "no field named {name:?} (fields: {})",
        if seen.is_empty() {
            "none".to_owned()
        } else {
            seen.join(", ")
        }
    )))
}

/// A body with one file field: (content type header value, body).
pub fn single_file(name: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let nonce = weft_crypto::random_bytes(12)
        .map(|b| weft_crypto::hex(&b))
        .unwrap_or_else(|_| "weftboundary0000".into());
    let boundary = format!("weft-{nonce}");
    let mut body = Vec::with_capacity(content.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn round_trip_with_binary_content() {
        let content: Vec<u8> = (0..=255u8).chain(b"\r\n--x\r\n".iter().copied()).collect();
        let (ct, body) = single_file("config-block", "genesis.block", &content);
        let b = boundary(&ct).unwrap();
        assert_eq!(field(&body, &b, "config-block").unwrap(), &content[..]);
        let e = field(&body, &b, "other").unwrap_err();
        assert!(e.0.contains("config-block"), "{e}");
    }

    #[test]
    fn go_style_body_with_several_parts() {
        // As Go's mime/multipart writer lays it out.
        let body = b"--abc\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
--abc\r\nContent-Disposition: form-data; name=\"config-block\"; filename=\"config.block\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\x01\x02\r\n--abc--\r\n";
        assert_eq!(field(body, "abc", "config-block").unwrap(), b"\x00\x01\x02");
        assert_eq!(field(body, "abc", "note").unwrap(), b"hello");
    }

    #[test]
    fn lf_only_and_quoted_boundary() {
        let b = boundary("multipart/form-data; boundary=\"q1\"").unwrap();
        let body = b"--q1\nContent-Disposition: form-data; name=\"config-block\"\n\nXYZ\n--q1--\n";
        assert_eq!(field(body, &b, "config-block").unwrap(), b"XYZ");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(boundary("application/json").is_err());
        assert!(boundary("multipart/form-data").is_err());
        for body in [
            &b""[..],
            b"--abc",
            b"--abc\r\n",
            b"--abc\r\nContent-Disposition: form-data; name=\"config-block\"\r\n\r\nno end",
            b"garbage",
            b"--abc--",
        ] {
            assert!(field(body, "abc", "config-block").is_err());
        }
    }
}
