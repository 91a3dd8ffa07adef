//! Hand-written HTTP where google-gmail1 has no API: batch, control API, standard
//! parameters, faults, imports, several mailboxes, and the binary.

mod common;

use std::collections::HashMap;

use common::*;
use gmail_emulator::QuotaTable;

fn batch_body(boundary: &str, ids: &[String], eol: &str, absolute_base: Option<&str>) -> Vec<u8> {
    let mut body = String::new();
    for (n, id) in ids.iter().enumerate() {
        let target = format!(
            "{}gmail/v1/users/me/messages/{id}?format=minimal",
            absolute_base.unwrap_or("/")
        );
        body.push_str(&format!(
            "--{boundary}{eol}Content-Type: application/http{eol}Content-ID: <item+{n}>{eol}{eol}GET {target}{eol}{eol}"
        ));
    }
    body.push_str(&format!("--{boundary}--{eol}"));
    body.into_bytes()
}

/// (content id, status, json) of each response part.
fn parse_batch(reply: &Reply) -> Vec<(String, u16, serde_json::Value)> {
    let ct = reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .expect("content type");
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .trim_matches('"');
    let text = String::from_utf8(reply.body.to_vec()).expect("utf8");
    let mut out = Vec::new();
    for part in text.split(&format!("--{boundary}")).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let cid = part
            .lines()
            .find_map(|l| l.strip_prefix("Content-ID: "))
            .expect("content id")
            .trim()
            .to_string();
        let status_line = part
            .lines()
            .find(|l| l.starts_with("HTTP/1.1 "))
            .expect("status");
        let status: u16 = status_line[9..12].parse().expect("code");
        let json_start = part.find('{').expect("json");
        let json_end = part.rfind('}').expect("json end");
        let v = serde_json::from_str(&part[json_start..=json_end]).expect("part json");
        out.push((cid, status, v));
    }
    out
}

#[tokio::test]
async fn batch_of_50_gets_on_both_endpoints() {
    let emu = start(60).await;
    let ids: Vec<String> = emu
        .message_ids(&emu.default_mailbox())
        .into_iter()
        .take(50)
        .collect();
    // CRLF parts on /batch/gmail/v1.
    let body = batch_body("batch_abc", &ids, "\r\n", None);
    let r = request(
        "POST",
        &format!("{}batch/gmail/v1", emu.url()),
        Some("multipart/mixed; boundary=batch_abc"),
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    let parts = parse_batch(&r);
    assert_eq!(parts.len(), 50);
    for (n, (cid, status, v)) in parts.iter().enumerate() {
        assert_eq!(cid, &format!("<response-item+{n}>"));
        assert_eq!(*status, 200);
        assert_eq!(v["id"], ids[n].as_str());
    }
    // Bare-LF parts with absolute URLs on /batch (Google's Python client).
    let body = batch_body("===x==", &ids[..3], "\n", Some(&emu.url()));
    let r = request(
        "POST",
        &format!("{}batch", emu.url()),
        Some("multipart/mixed; boundary=\"===x==\""),
        body,
    )
    .await;
    let parts = parse_batch(&r);
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[2].2["id"], ids[2].as_str());
    // A batch costs the sum of its parts: 53 gets.
    let stats = emu.stats();
    assert_eq!(
        stats.calls(&emu.default_mailbox(), "users.messages.get"),
        53
    );
    let get = Quota::default().table.cost("users.messages.get");
    assert_eq!(
        stats.quota_units(&emu.default_mailbox()),
        53 * u64::from(get)
    );
    assert_eq!(stats.batches, 2);
    // More than 100 parts is refused.
    let many: Vec<String> = (0..101).map(|i| format!("x{i}")).collect();
    let r = request(
        "POST",
        &format!("{}batch/gmail/v1", emu.url()),
        Some("multipart/mixed; boundary=b"),
        batch_body("b", &many, "\r\n", None),
    )
    .await;
    assert_eq!(r.status, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn batch_parts_are_throttled_individually() {
    let emu = start(10).await;
    // Room for five 5-unit gets (the 2025 price).
    emu.set_quota(Quota {
        per_minute: Some(25),
        table: QuotaTable::Y2025,
        ..Quota::default()
    });
    let ids: Vec<String> = emu
        .message_ids(&emu.default_mailbox())
        .into_iter()
        .take(8)
        .collect();
    let r = request(
        "POST",
        &format!("{}batch/gmail/v1", emu.url()),
        Some("multipart/mixed; boundary=q"),
        batch_body("q", &ids, "\r\n", None),
    )
    .await;
    let statuses: Vec<u16> = parse_batch(&r).iter().map(|p| p.1).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    emu.shutdown().await;
}

#[tokio::test]
async fn errors_have_gmail_shape_and_standard_params_are_ignored() {
    let emu = start(3).await;
    let id = emu.message_ids(&emu.default_mailbox())[0].clone();
    let r = get(&format!(
        "{}gmail/v1/users/me/messages/{id}?format=raw&alt=json&prettyPrint=false&fields=raw&quotaUser=u&key=k",
        emu.url()
    ))
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let raw = v["raw"].as_str().expect("raw");
    assert_eq!(raw.len() % 4, 0, "raw is padded base64url");
    let r = get(&format!("{}gmail/v1/users/me/messages/nope", emu.url())).await;
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["error"]["code"], 404);
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    assert_eq!(v["error"]["errors"][0]["reason"], "notFound");
    assert_eq!(v["error"]["errors"][0]["domain"], "global");
    let r = get(&format!(
        "{}gmail/v1/users/me/messages?pageToken=%%%",
        emu.url()
    ))
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["errors"][0]["reason"], "invalidArgument");
    let r = get(&format!("{}gmail/v1/users/me/history", emu.url())).await;
    assert_eq!(r.status, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn control_api_over_http() {
    let emu = start(0).await;
    let base = format!("{}_emulator/", emu.url());
    let mb = emu.default_mailbox();
    let (raw, _) = mixed_message();
    let r = request(
        "POST",
        &format!("{base}mailboxes/{mb}/messages?labels=INBOX,UNREAD"),
        Some("message/rfc822"),
        raw.clone(),
    )
    .await;
    assert_eq!(r.status, 200);
    let id = r.json()["id"].as_str().expect("id").to_string();
    assert_eq!(emu.raw_message(&mb, &id), Some(raw.clone()));
    let reply = request(
        "POST",
        &format!("{base}mailboxes/{mb}/messages?threadId={id}"),
        Some("message/rfc822"),
        raw,
    )
    .await;
    let reply_id = reply.json()["id"].as_str().expect("id").to_string();
    assert_eq!(emu.thread_of(&mb, &reply_id), Some(id.clone()));
    let r = request(
        "POST",
        &format!("{base}mailboxes/{mb}/messages/{id}/modify"),
        Some("application/json"),
        br#"{"addLabelIds":["STARRED"],"removeLabelIds":["UNREAD"]}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    let m = get(&format!(
        "{}gmail/v1/users/me/messages/{id}?format=minimal",
        emu.url()
    ))
    .await
    .json();
    assert_eq!(m["labelIds"], serde_json::json!(["INBOX", "STARRED"]));
    let r = request(
        "POST",
        &format!("{base}mailboxes/{mb}/messages/{id}/trash"),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(
        "DELETE",
        &format!("{base}mailboxes/{mb}/messages/{reply_id}"),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&format!("{base}mailboxes/{mb}/messages")).await;
    assert_eq!(r.json()["ids"], serde_json::json!([id]));
    let r = request(
        "DELETE",
        &format!("{base}mailboxes/{mb}/messages/missing"),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = request(
        "PUT",
        &format!("{base}faults"),
        Some("application/json"),
        br#"{"errorRate":1.0}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&format!("{}gmail/v1/users/me/profile", emu.url())).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["errors"][0]["reason"], "backendError");
    request("DELETE", &format!("{base}faults"), None, vec![]).await;
    let r = request(
        "PUT",
        &format!("{base}quota"),
        Some("application/json"),
        br#"{"perMinute":1}"#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(&format!("{}gmail/v1/users/me/profile", emu.url()))
            .await
            .status,
        200
    );
    let limited = get(&format!("{}gmail/v1/users/me/profile", emu.url())).await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry));
    let stats = get(&format!("{base}stats")).await.json();
    assert_eq!(stats["mailboxes"][&mb]["users.getProfile"]["calls"], 3);
    assert_eq!(stats["mailboxes"][&mb]["users.getProfile"]["throttled"], 1);
    assert_eq!(stats["mailboxes"][&mb]["users.getProfile"]["quotaUnits"], 2);
    assert_eq!(stats["faultsInjected"]["backendError"], 1);
    request("POST", &format!("{base}stats/reset"), None, vec![]).await;
    assert_eq!(emu.stats().calls(&mb, "users.getProfile"), 0);
    let r = request(
        "POST",
        &format!("{base}mailboxes/{mb}/expire-history"),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_drop_vanish_and_empty_history_pages() {
    let emu = start(10).await;
    let mb = emu.default_mailbox();
    let ids = emu.message_ids(&mb);
    emu.set_faults(Faults {
        vanish_rate: 1.0,
        ..Faults::default()
    });
    let r = get(&format!(
        "{}gmail/v1/users/me/messages/{}?format=raw",
        emu.url(),
        ids[0]
    ))
    .await;
    assert_eq!(r.status, 404);
    assert!(!emu.message_ids(&mb).contains(&ids[0]), "vanished for real");
    assert_eq!(emu.stats().faults_injected.get("vanish"), Some(&1));

    emu.set_faults(Faults {
        unavailable_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        get(&format!("{}gmail/v1/users/me/labels", emu.url()))
            .await
            .status,
        503
    );

    // A dropped connection: the client sees a body error, never a clean response.
    emu.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    let hub = hub(&emu.url());
    let err = hub
        .users()
        .messages_get("me", &ids[1])
        .format("raw")
        .doit()
        .await
        .expect_err("dropped");
    assert_eq!(error_code(&err), None, "{err:?}");

    // History: a page with a token and no records, then the records.
    emu.set_faults(Faults::default());
    let start_id = emu.history_id(&mb).expect("history id");
    let (raw, _) = mixed_message();
    emu.insert_raw(&mb, &raw, &["INBOX"], None).expect("insert");
    emu.set_faults(Faults {
        empty_history_page_rate: 1.0,
        ..Faults::default()
    });
    let url = format!(
        "{}gmail/v1/users/me/history?startHistoryId={start_id}",
        emu.url()
    );
    let page = get(&url).await.json();
    assert!(page.get("history").is_none());
    let token = page["nextPageToken"].as_str().expect("token").to_string();
    emu.set_faults(Faults::default());
    let page = get(&format!("{url}&pageToken={token}")).await.json();
    assert_eq!(page["history"].as_array().map(Vec::len), Some(1));
    assert!(page["history"][0]["messagesAdded"][0]["message"]["labelIds"].is_array());
    emu.shutdown().await;
}

#[tokio::test]
async fn takeout_mbox_import_threads_and_labels() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/takeout.mbox");
    let emu = Emulator::start(EmulatorConfig {
        messages: 0,
        import: Some(path),
        ..EmulatorConfig::default()
    })
    .await
    .expect("start");
    let mb = emu.default_mailbox();
    let ids = emu.message_ids(&mb);
    assert_eq!(ids.len(), 39);
    let mut threads: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        *threads
            .entry(emu.thread_of(&mb, id).expect("thread"))
            .or_default() += 1;
    }
    let mut sizes: Vec<usize> = threads.values().copied().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(&sizes[..3], &[7, 6, 6]);
    let labels = get(&format!("{}gmail/v1/users/me/labels", emu.url()))
        .await
        .json();
    let names: Vec<String> = labels["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["name"].as_str().map(str::to_string))
        .collect();
    assert!(names.contains(&"takeout".to_string()), "{names:?}");
    assert!(names.contains(&"☯".to_string()), "{names:?}");
    // Imported mail keeps its Date as internalDate (2019).
    let m = get(&format!(
        "{}gmail/v1/users/me/messages/{}?format=minimal",
        emu.url(),
        ids[0]
    ))
    .await
    .json();
    let date: i64 = m["internalDate"]
        .as_str()
        .expect("date")
        .parse()
        .expect("ms");
    assert!(date < 1_600_000_000_000);
    emu.shutdown().await;
}

#[tokio::test]
async fn several_mailboxes_and_token_map() {
    let emu = Emulator::start(EmulatorConfig {
        messages: 5,
        mailboxes: vec!["a@example.com".into(), "b@example.com".into()],
        tokens: HashMap::from([
            ("tok-a".to_string(), "a@example.com".to_string()),
            ("tok-b".to_string(), "b@example.com".to_string()),
        ]),
        ..EmulatorConfig::default()
    })
    .await
    .expect("start");
    let hub_b = {
        use google_gmail1::{Gmail, common, hyper_util};
        let client: hyper_util::client::legacy::Client<_, common::Body> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new());
        let mut hub = Gmail::new(client, "tok-b".to_string());
        hub.base_url(emu.url());
        hub
    };
    let (_, p) = hub_b
        .users()
        .get_profile("me")
        .doit()
        .await
        .expect("profile");
    assert_eq!(p.email_address.as_deref(), Some("b@example.com"));
    let (_, p) = hub_b
        .users()
        .get_profile("a@example.com")
        .doit()
        .await
        .expect("explicit");
    assert_eq!(p.email_address.as_deref(), Some("a@example.com"));
    // An unknown token for `me` is an auth error; an unknown address is refused.
    let err = hub(&emu.url())
        .users()
        .get_profile("me")
        .doit()
        .await
        .expect_err("bad token");
    assert_eq!(error_code(&err), Some(401));
    let err = hub_b
        .users()
        .get_profile("c@example.com")
        .doit()
        .await
        .expect_err("unknown");
    assert_eq!(error_code(&err), Some(403));
    // Mailboxes hold different mail.
    assert_ne!(
        emu.message_ids("a@example.com"),
        emu.message_ids("b@example.com")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn binary_prints_url_first_and_stops_on_sigterm() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gmail-emulator"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--seed",
            "42",
            "--messages",
            "20",
            "--days",
            "7",
            "--quota-table",
            "2025",
            "--quota-per-min",
            "15000",
            "--project-quota-per-min",
            "1200000",
            "--project-daily-units",
            "1000000000",
            "--enforce-daily",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line.trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let p = get(&format!("{url}gmail/v1/users/me/profile")).await.json();
    assert_eq!(p["messagesTotal"], 20);
    let q = get(&format!("{url}_emulator/quota")).await.json();
    assert_eq!(q["table"], "2025");
    assert_eq!(q["perMinute"], 15_000);
    assert_eq!(q["projectPerMinute"], 1_200_000);
    assert_eq!(q["projectDaily"], 1_000_000_000);
    assert_eq!(q["enforceDaily"], true);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("emulator did not stop on SIGTERM");
        }
    };
    assert!(status.success());
}

fn walk(part: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    let id = part["partId"].as_str().expect("partId").to_string();
    for (n, child) in part["parts"].as_array().into_iter().flatten().enumerate() {
        let want = if id.is_empty() {
            n.to_string()
        } else {
            format!("{id}.{n}")
        };
        assert_eq!(child["partId"], want.as_str());
        walk(child, out);
    }
    out.push(part.clone());
}

#[tokio::test]
async fn generated_mail_full_format_and_shared_attachments() {
    use base64::Engine as _;
    let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let emu = start(80).await;
    let mut attachments = 0;
    let mut distinct = std::collections::HashSet::new();
    let mut mime_types = std::collections::HashSet::new();
    for id in emu.message_ids(&emu.default_mailbox()) {
        let m = get(&format!(
            "{}gmail/v1/users/me/messages/{id}?format=full",
            emu.url()
        ))
        .await
        .json();
        let mut parts = Vec::new();
        walk(&m["payload"], &mut parts);
        for p in parts {
            mime_types.insert(p["mimeType"].as_str().expect("mime").to_string());
            let size = p["body"]["size"].as_u64().expect("size") as usize;
            if let Some(data) = p["body"]["data"].as_str() {
                assert!(!data.contains('='), "part data is unpadded");
                assert_eq!(unpadded.decode(data).expect("b64url").len(), size);
            }
            if let Some(aid) = p["body"]["attachmentId"].as_str() {
                let a = get(&format!(
                    "{}gmail/v1/users/me/messages/{id}/attachments/{aid}",
                    emu.url()
                ))
                .await
                .json();
                let bytes = unpadded
                    .decode(a["data"].as_str().expect("data"))
                    .expect("b64url");
                assert_eq!(bytes.len(), size);
                assert_eq!(a["size"].as_u64(), Some(size as u64));
                attachments += 1;
                distinct.insert(bytes);
            }
        }
    }
    assert!(
        attachments > distinct.len(),
        "attachment bytes are shared across messages"
    );
    for want in [
        "multipart/alternative",
        "multipart/mixed",
        "multipart/related",
        "message/rfc822",
        "image/png",
    ] {
        assert!(
            mime_types.contains(want),
            "{want} missing from {mime_types:?}"
        );
    }
    emu.shutdown().await;
}

/// The first `attachmentId` in a `format=full` payload.
fn attachment_id(part: &serde_json::Value) -> Option<String> {
    if let Some(aid) = part["body"]["attachmentId"].as_str() {
        return Some(aid.to_string());
    }
    part["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(attachment_id)
}

fn retry_after(r: &Reply) -> u64 {
    r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds")
}

/// The `error` object of a quota refusal, checked for Gmail's shape.
fn quota_error(r: &Reply, code: u16, reason: &str) -> serde_json::Value {
    assert_eq!(r.status, code);
    let e = r.json()["error"].clone();
    assert_eq!(e["code"], code);
    assert_eq!(e["errors"][0]["domain"], "usageLimits");
    assert_eq!(e["errors"][0]["reason"], reason);
    assert_eq!(e["errors"][0]["message"], e["message"]);
    e
}

/// Calls every Gmail method the emulator serves once, as `me`.
async fn call_every_method(emu: &Emulator) {
    let mb = emu.default_mailbox();
    let base = format!("{}gmail/v1/users/me/", emu.url());
    let (raw, _) = mixed_message();
    let id = emu.insert_raw(&mb, &raw, &["INBOX"], None).expect("insert");
    let full = get(&format!("{base}messages/{id}?format=full"))
        .await
        .json();
    let aid = attachment_id(&full["payload"]).expect("an attachment");
    let thread = emu.thread_of(&mb, &id).expect("thread");
    let history = emu.history_id(&mb).expect("history id");
    for path in [
        "profile".to_string(),
        "labels".to_string(),
        "messages".to_string(),
        "threads".to_string(),
        format!("threads/{thread}"),
        format!("messages/{id}/attachments/{aid}"),
        format!("history?startHistoryId={history}"),
    ] {
        assert_eq!(get(&format!("{base}{path}")).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn each_quota_table_charges_its_own_prices() {
    let emu = start(3).await;
    let mb = emu.default_mailbox();
    for table in [QuotaTable::Y2025, QuotaTable::Y2026] {
        emu.set_quota(Quota {
            table,
            ..Quota::default()
        });
        emu.reset_stats();
        call_every_method(&emu).await;
        let stats = emu.stats();
        assert_eq!(stats.table, table);
        let methods = &stats.mailboxes[&mb];
        assert_eq!(methods.len(), 8, "{methods:?}");
        for (method, m) in methods {
            assert_eq!(m.calls, 1, "{method}");
            let cost = u64::from(table.cost(method));
            assert_eq!(m.quota_units, cost, "{table} {method}");
        }
        assert_eq!(stats.project_units_today, stats.quota_units(&mb));
    }
    // The 2026 table prices reads higher.
    let get = "users.messages.get";
    assert!(QuotaTable::Y2026.cost(get) > QuotaTable::Y2025.cost(get));
    emu.shutdown().await;
}

#[tokio::test]
async fn sliding_user_minute_refuses_the_sixth_get_with_gmail_shape() {
    let emu = start(6).await;
    let base = format!("{}_emulator/", emu.url());
    let ids = emu.message_ids(&emu.default_mailbox());
    let url = |id: &str| format!("{}gmail/v1/users/me/messages/{id}", emu.url());
    emu.set_quota(Quota {
        per_minute: Some(100),
        table: QuotaTable::Y2026,
        ..Quota::default()
    });
    for id in &ids[..5] {
        assert_eq!(get(&url(id)).await.status, 200);
    }
    let r = get(&url(&ids[5])).await;
    let e = quota_error(&r, 429, "rateLimitExceeded");
    assert_eq!(e["status"], "RESOURCE_EXHAUSTED");
    assert!((1..=60).contains(&retry_after(&r)), "{:?}", r.headers);
    // The 403 flavour, through the control API: the window is still full.
    let put = request(
        "PUT",
        &format!("{base}quota"),
        Some("application/json"),
        br#"{"perMinute":100,"use403":true,"table":"2026"}"#.to_vec(),
    )
    .await;
    assert_eq!(put.status, 200);
    let r = get(&url(&ids[5])).await;
    quota_error(&r, 403, "userRateLimitExceeded");
    assert!((1..=60).contains(&retry_after(&r)));
    let stats = get(&format!("{base}stats")).await.json();
    assert_eq!(stats["table"], "2026");
    assert_eq!(stats["refusals"]["rateLimitExceeded"], 1);
    assert_eq!(stats["refusals"]["userRateLimitExceeded"], 1);
    assert_eq!(stats["projectUnitsToday"], 100);
    // A reset forgets the window and the counters.
    request("POST", &format!("{base}stats/reset"), None, vec![]).await;
    let stats = emu.stats();
    assert!(stats.refusals.is_empty());
    assert_eq!(stats.project_units_today, 0);
    assert_eq!(get(&url(&ids[5])).await.status, 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn project_minute_is_shared_by_mailboxes() {
    let emu = Emulator::start(EmulatorConfig {
        messages: 5,
        mailboxes: vec!["a@example.com".into(), "b@example.com".into()],
        ..EmulatorConfig::default()
    })
    .await
    .expect("start");
    emu.set_quota(Quota {
        project_per_minute: Some(100),
        ..Quota::default()
    });
    let ids = |mb: &str| emu.message_ids(mb);
    let (a, b) = (ids("a@example.com"), ids("b@example.com"));
    let url = |mb: &str, id: &str| format!("{}gmail/v1/users/{mb}/messages/{id}", emu.url());
    // Five 20-unit gets between the two mailboxes spend the project's minute.
    for (mb, id) in [
        ("a@example.com", &a[0]),
        ("b@example.com", &b[0]),
        ("a@example.com", &a[1]),
        ("b@example.com", &b[1]),
        ("a@example.com", &a[2]),
    ] {
        assert_eq!(get(&url(mb, id)).await.status, 200);
    }
    let r = get(&url("b@example.com", &b[2])).await;
    quota_error(&r, 429, "rateLimitExceeded");
    assert!((1..=60).contains(&retry_after(&r)));
    let stats = emu.stats();
    assert_eq!(stats.refused("projectRateLimitExceeded"), 1);
    assert_eq!(stats.faults_injected.get("projectQuota"), Some(&1));
    assert_eq!(stats.quota_units("a@example.com"), 60);
    assert_eq!(stats.quota_units("b@example.com"), 40);
    emu.shutdown().await;
}

#[tokio::test]
async fn daily_threshold_refuses_only_when_enforced() {
    let emu = start(3).await;
    let base = format!("{}_emulator/", emu.url());
    let profile = format!("{}gmail/v1/users/me/profile", emu.url());
    let put_quota = |body: &'static str| {
        let url = format!("{base}quota");
        async move { request("PUT", &url, Some("application/json"), body.into()).await }
    };
    let r = put_quota(r#"{"table":"2025","projectDaily":2,"enforceDaily":true}"#).await;
    assert_eq!(r.json()["projectDaily"], 2);
    assert_eq!(get(&profile).await.status, 200);
    assert_eq!(get(&profile).await.status, 200);
    let r = get(&profile).await;
    quota_error(&r, 403, "dailyLimitExceeded");
    // Until the next midnight in Los Angeles: at most a 25-hour day away.
    assert!((1..=25 * 3600).contains(&retry_after(&r)));
    // Not enforced: a billing threshold, served and counted.
    put_quota(r#"{"table":"2025","projectDaily":2}"#).await;
    assert_eq!(get(&profile).await.status, 200);
    assert_eq!(get(&profile).await.status, 200);
    let stats = get(&format!("{base}stats")).await.json();
    assert_eq!(stats["table"], "2025");
    assert_eq!(stats["projectUnitsToday"], 4);
    assert_eq!(stats["projectUnitsPastDaily"], 2);
    assert_eq!(stats["refusals"]["dailyLimitExceeded"], 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn labels_are_created_renamed_and_deleted_over_the_control_api() {
    let emu = start(0).await;
    let base = format!("{}_emulator/", emu.url());
    let mb = emu.default_mailbox();
    let json = |s: &str| s.as_bytes().to_vec();
    let names = || async {
        let l = get(&format!("{}gmail/v1/users/me/labels", emu.url()))
            .await
            .json();
        l["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap_or("").to_owned(),
                    l["name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect::<HashMap<String, String>>()
    };
    let labels_url = format!("{base}mailboxes/{mb}/labels");
    let r = request(
        "POST",
        &labels_url,
        Some("application/json"),
        json(r#"{"name":"work"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let id = r.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(names().await.get(&id).map(String::as_str), Some("work"));
    let taken = request(
        "POST",
        &labels_url,
        Some("application/json"),
        json(r#"{"name":"work"}"#),
    )
    .await;
    assert_eq!(taken.status, 409, "a name is one label's");

    let (raw, _) = mixed_message();
    let m = emu.insert_raw(&mb, &raw, &["INBOX", "work"], None).unwrap();
    let r = request(
        "PATCH",
        &format!("{labels_url}/{id}"),
        Some("application/json"),
        json(r#"{"name":"work/2026"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        names().await.get(&id).map(String::as_str),
        Some("work/2026")
    );
    let system = request(
        "PATCH",
        &format!("{labels_url}/INBOX"),
        Some("application/json"),
        json(r#"{"name":"in"}"#),
    )
    .await;
    assert_eq!(system.status, 409, "Gmail's own labels keep their names");

    let before = emu.history_id(&mb).unwrap();
    let r = request("DELETE", &format!("{labels_url}/{id}"), None, vec![]).await;
    assert_eq!(r.status, 200);
    assert!(!names().await.contains_key(&id));
    let msg = get(&format!(
        "{}gmail/v1/users/me/messages/{m}?format=minimal",
        emu.url()
    ))
    .await
    .json();
    assert_eq!(msg["labelIds"], serde_json::json!(["INBOX"]));
    assert!(
        emu.history_id(&mb).unwrap() > before,
        "the removal is in history"
    );
    emu.shutdown().await;
}
