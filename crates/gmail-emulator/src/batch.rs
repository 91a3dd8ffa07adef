//! Google HTTP batch: a multipart/mixed body of `application/http` parts, each an inner
//! GET, answered with multipart/mixed parts carrying `Content-ID: <response-ID>`.
//! CRLF and bare-LF line endings are both accepted (Google's Python client sends LF).

use http::{Method, StatusCode};

use crate::api::{ApiRequest, dispatch};
use crate::state::State;
use crate::wire::ApiResponse;

const MAX_PARTS: usize = 100;

fn boundary_of(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Split at the first blank line (CRLF CRLF or LF LF) into (head, rest).
fn split_head(s: &str) -> (&str, &str) {
    let crlf = s.find("\r\n\r\n").map(|i| (i, 4));
    let lf = s.find("\n\n").map(|i| (i, 2));
    let best = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match best {
        Some((i, n)) => (&s[..i], &s[i + n..]),
        None => (s, ""),
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

struct Part {
    content_id: Option<String>,
    request: Result<ApiRequest, String>,
}

fn parse_part(raw: &str, outer_auth: Option<&str>) -> Part {
    let (head, inner) = split_head(raw.trim_start_matches(['\r', '\n']));
    let content_id = header(head, "Content-ID").map(|c| c.trim_matches(['<', '>']).to_string());
    let (inner_head, _body) = split_head(inner);
    let mut lines = inner_head.lines();
    let request = (|| {
        let line = lines.next().ok_or("empty inner request")?.trim();
        let mut it = line.split_whitespace();
        let method = it.next().ok_or("missing method")?;
        let target = it.next().ok_or("missing request target")?;
        let method: Method = method.parse().map_err(|_| "bad method")?;
        // Absolute URLs are allowed; keep path and query only.
        let target = match target.find("://") {
            Some(i) => {
                let rest = &target[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            None => target,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let auth = header(inner_head, "Authorization").or(outer_auth);
        Ok(ApiRequest::new(method, path, query, auth))
    })();
    Part {
        content_id,
        request: request.map_err(|e: &str| e.to_string()),
    }
}

/// Serve a batch; Ok((content type, body)) or a Gmail error for a malformed batch.
pub(crate) async fn handle(
    state: &State,
    content_type: &str,
    auth: Option<&str>,
    body: &[u8],
) -> Result<(String, Vec<u8>), ApiResponse> {
    let boundary = boundary_of(content_type).ok_or_else(|| {
        ApiResponse::bad_request("Batch requests must be multipart/mixed with a boundary")
    })?;
    let text = String::from_utf8_lossy(body);
    let delimiter = format!("--{boundary}");
    let mut raw_parts: Vec<&str> = Vec::new();
    for (i, chunk) in text.split(delimiter.as_str()).enumerate() {
        if i == 0 {
            continue; // preamble
        }
        if chunk.starts_with("--") {
            break; // close delimiter
        }
        raw_parts.push(chunk);
    }
    if raw_parts.is_empty() {
        return Err(ApiResponse::bad_request("Batch request contains no parts"));
    }
    if raw_parts.len() > MAX_PARTS {
        return Err(ApiResponse::bad_request(&format!(
            "Too many requests in batch; the limit is {MAX_PARTS}"
        )));
    }
    state.limits.batch();
    let out_boundary = format!("batch_{:016x}", state.random_below(u64::MAX - 1));
    let mut out = Vec::new();
    for raw in raw_parts {
        let part = parse_part(raw, auth);
        let resp = match &part.request {
            Ok(req) => dispatch(state, req, true).await,
            Err(e) => ApiResponse::bad_request(e),
        };
        out.extend_from_slice(
            format!("--{out_boundary}\r\nContent-Type: application/http\r\n").as_bytes(),
        );
        if let Some(id) = &part.content_id {
            out.extend_from_slice(format!("Content-ID: <response-{id}>\r\n").as_bytes());
        }
        let reason = StatusCode::from_u16(resp.status.as_u16())
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        out.extend_from_slice(
            format!(
                "\r\nHTTP/1.1 {} {reason}\r\nContent-Type: application/json; charset=UTF-8\r\n",
                resp.status.as_u16()
            )
            .as_bytes(),
        );
        if let Some(secs) = resp.retry_after {
            out.extend_from_slice(format!("Retry-After: {secs}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", resp.body.len()).as_bytes());
        out.extend_from_slice(&resp.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{out_boundary}--\r\n").as_bytes());
    Ok((format!("multipart/mixed; boundary={out_boundary}"), out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lf_parts() {
        let p = parse_part(
            "\nContent-Type: application/http\nContent-ID: <abc+1>\n\nGET /gmail/v1/users/me/messages/x?format=raw\n\n",
            None,
        );
        assert_eq!(p.content_id.as_deref(), Some("abc+1"));
        let req = p.request.expect("request");
        assert_eq!(req.path, "/gmail/v1/users/me/messages/x");
        assert_eq!(req.param("format"), Some("raw"));
    }

    #[test]
    fn boundary_parsing() {
        assert_eq!(
            boundary_of("multipart/mixed; boundary=\"===x==\"").as_deref(),
            Some("===x==")
        );
        assert_eq!(boundary_of("application/json"), None);
    }
}
