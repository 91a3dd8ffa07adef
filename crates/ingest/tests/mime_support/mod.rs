//! Shared helpers for the `mime_*` integration tests: fixture loading, mbox
//! splitting, sha256 of part content, LF→CRLF conversion.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

use ingest::mime::{ParsedMessage, ParsedPart, parse};
use sha2::{Digest, Sha256};

pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn parse_fixture(name: &str) -> ParsedMessage {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every `.eml` fixture and every message of every `.mbox` fixture, named.
pub fn all_fixture_messages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = std::fs::read(&path).expect("fixture");
        if name.ends_with(".eml") {
            out.push((name, bytes));
        } else if name.ends_with(".mbox") {
            for (i, msg) in split_mbox(&bytes).into_iter().enumerate() {
                out.push((format!("{name}#{i}"), msg));
            }
        }
    }
    out
}

/// Splits an mbox on its `From ` separator lines (dropping them).
pub fn split_mbox(mbox: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            messages.push(Vec::new());
        } else if let Some(current) = messages.last_mut() {
            current.extend_from_slice(line);
        }
    }
    messages
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn part<'a>(message: &'a ParsedMessage, id: &str) -> &'a ParsedPart {
    message
        .parts
        .iter()
        .find(|p| p.part_id.as_str() == id)
        .unwrap_or_else(|| panic!("no part {id}; parts: {:?}", message.parts))
}

pub fn part_ids(message: &ParsedMessage) -> Vec<&str> {
    message.parts.iter().map(|p| p.part_id.as_str()).collect()
}

pub fn to_crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 20);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}
