//! Conformance cases, generic over the backend fixture.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use store::{Sha256, StoreError, Verification};

use crate::common::{Fixture, random_bytes};

const MB30: usize = 30 * 1000 * 1000;

fn chunks(
    bytes: &Bytes,
    size: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + use<> {
    let parts: Vec<std::io::Result<Bytes>> = (0..bytes.len())
        .step_by(size.max(1))
        .map(|i| Ok(bytes.slice(i..(i + size).min(bytes.len()))))
        .collect();
    futures::stream::iter(parts)
}

/// Read an object through `get_stream`, concatenating the chunks.
async fn read_stream(store: &store::BlobStore, sha: &Sha256) -> Result<Bytes, StoreError> {
    let mut stream = store.get_stream(sha).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(Bytes::from(out))
}

pub async fn round_trip(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(100_000);
    let out = store.put(data.clone()).await.expect("put");
    assert!(out.created);
    assert_eq!(out.size, 100_000);
    assert_eq!(out.sha256, Sha256::digest(&data));
    assert_eq!(out.key, store.key_for(&out.sha256));
    let hex = out.sha256.to_string();
    assert!(
        out.key
            .ends_with(&format!("sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4])),
        "{}",
        out.key
    );
    assert_eq!(store.get(&out.sha256).await.expect("get"), data);
    assert_eq!(
        read_stream(store, &out.sha256).await.expect("get_stream"),
        data
    );
    assert_eq!(store.head(&out.sha256).await.expect("head"), Some(100_000));
    assert_eq!(
        store.verify(&out.sha256).await.expect("verify"),
        Verification::Ok
    );
}

pub async fn second_put_is_not_created(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(4096);
    let first = store.put(data.clone()).await.expect("first put");
    let second = store.put(data.clone()).await.expect("second put");
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.key, second.key);
    assert_eq!(first.sha256, second.sha256);
    let third = store
        .put_stream(chunks(&data, 1000))
        .await
        .expect("stream put");
    assert!(!third.created);
    assert_eq!(third.key, first.key);
}

pub async fn concurrent_puts_store_one_object(fx: impl Fixture) {
    let store = fx.store().clone();
    let data = random_bytes(256 * 1024);
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            let data = data.clone();
            tokio::spawn(async move { store.put(data).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let out = task.await.expect("task").expect("put");
        created += usize::from(out.created);
    }
    assert_eq!(
        created, 1,
        "exactly one of 32 concurrent puts creates the object"
    );
    let keys: Vec<String> = store.list().try_collect().await.expect("list");
    assert_eq!(keys, vec![store.key_for(&Sha256::digest(&data))]);
    assert_eq!(store.get(&Sha256::digest(&data)).await.expect("get"), data);
    assert_eq!(
        store.verify(&Sha256::digest(&data)).await.expect("verify"),
        Verification::Ok
    );
}

pub async fn verify_detects_corruption(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(10_000);
    let out = store.put(data).await.expect("put");
    fx.corrupt(&out.key).await;
    match store.verify(&out.sha256).await.expect("verify") {
        Verification::Corrupt { actual } => assert_ne!(actual, out.sha256),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match store.get(&out.sha256).await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, out.key),
        other => panic!("expected a Corrupt error from get, got {other:?}"),
    }
    match read_stream(store, &out.sha256).await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, out.key),
        other => panic!("expected a Corrupt error from get_stream, got {other:?}"),
    }
}

pub async fn verify_reports_missing(fx: impl Fixture) {
    let store = fx.store();
    let never = Sha256::digest(b"never stored in this prefix");
    assert_eq!(
        store.verify(&never).await.expect("verify"),
        Verification::Missing
    );
    assert_eq!(store.head(&never).await.expect("head"), None);
    assert!(matches!(
        store.get(&never).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get_stream(&never).await,
        Err(StoreError::NotFound { .. })
    ));

    let out = store.put(random_bytes(1000)).await.expect("put");
    fx.remove(&out.key).await;
    assert_eq!(
        store.verify(&out.sha256).await.expect("verify"),
        Verification::Missing
    );
    // A later put restores it.
    let again = store.put(random_bytes(0)).await.expect("unrelated put");
    assert!(again.created);
}

/// One lookup of many objects (the commit's check that gc left a batch's
/// blobs alone): each answer belongs to its own key, present or not.
pub async fn heads_answer_each_object_in_the_order_asked(fx: impl Fixture) {
    let store = fx.store();
    let mut shas = Vec::new();
    let mut expected = Vec::new();
    for i in 0..40usize {
        if i % 3 == 1 {
            shas.push(Sha256::digest(format!("never stored {i}").as_bytes()));
            expected.push(None);
        } else {
            let out = store.put(random_bytes(10 + i)).await.expect("put");
            shas.push(out.sha256);
            expected.push(Some(10 + i as u64));
        }
    }
    assert_eq!(store.heads(&shas).await.expect("heads"), expected);
    assert_eq!(
        store.heads(&[]).await.expect("no heads"),
        Vec::<Option<u64>>::new()
    );
    // The same key twice is answered twice.
    let twice = [shas[0], shas[1], shas[0]];
    assert_eq!(
        store.heads(&twice).await.expect("heads"),
        [expected[0], expected[1], expected[0]]
    );
}

pub async fn empty_blob(fx: impl Fixture) {
    let store = fx.store();
    let out = store.put(Bytes::new()).await.expect("put empty");
    assert!(out.created);
    assert_eq!(out.size, 0);
    assert_eq!(
        out.sha256.to_string(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(store.get(&out.sha256).await.expect("get").len(), 0);
    assert_eq!(store.head(&out.sha256).await.expect("head"), Some(0));
    assert_eq!(
        store.verify(&out.sha256).await.expect("verify"),
        Verification::Ok
    );
    assert!(
        !store
            .put(Bytes::new())
            .await
            .expect("put empty again")
            .created
    );
    let streamed = store
        .put_stream(futures::stream::empty())
        .await
        .expect("empty stream");
    assert_eq!(streamed.sha256, out.sha256);
    assert!(!streamed.created);
}

pub async fn large_blob_30mb(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(MB30);
    let out = store.put(data.clone()).await.expect("put 30 MB");
    assert!(out.created);
    assert_eq!(out.size, MB30 as u64);
    assert_eq!(
        store.head(&out.sha256).await.expect("head"),
        Some(MB30 as u64)
    );
    assert!(store.get(&out.sha256).await.expect("get") == data);
    assert_eq!(
        store.verify(&out.sha256).await.expect("verify"),
        Verification::Ok
    );
    assert!(!store.put(data).await.expect("put again").created);
}

pub async fn large_stream_30mb(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(MB30);
    // Odd chunk size so chunk and part boundaries do not line up.
    let out = store
        .put_stream(chunks(&data, 1_000_003))
        .await
        .expect("put_stream 30 MB");
    assert!(out.created);
    assert_eq!(out.size, MB30 as u64);
    assert_eq!(out.sha256, Sha256::digest(&data));
    assert_eq!(
        store.verify(&out.sha256).await.expect("verify"),
        Verification::Ok
    );
    assert!(store.get(&out.sha256).await.expect("get") == data);
    assert!(read_stream(store, &out.sha256).await.expect("get_stream") == data);
    assert!(!store.put(data).await.expect("put same bytes").created);
}

pub async fn put_stream_matches_put(fx: impl Fixture) {
    let store = fx.store();
    let data = random_bytes(70_000);
    let streamed = store
        .put_stream(chunks(&data, 4096))
        .await
        .expect("put_stream");
    assert!(streamed.created);
    assert_eq!(streamed.sha256, Sha256::digest(&data));
    assert_eq!(streamed.size, 70_000);
    assert_eq!(streamed.key, store.key_for(&streamed.sha256));
    assert_eq!(store.get(&streamed.sha256).await.expect("get"), data);
    assert!(!store.put(data.clone()).await.expect("put").created);

    let from_reader = store
        .put_reader(std::io::Cursor::new(data.to_vec()))
        .await
        .expect("put_reader");
    assert_eq!(from_reader.sha256, streamed.sha256);
    assert!(!from_reader.created);

    // A failing input stream stores nothing and says it was the input.
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("connection reset by peer")),
    ]);
    match store.put_stream(failing).await {
        Err(StoreError::Input { .. }) => {}
        other => panic!("expected an Input error, got {other:?}"),
    }
    assert_eq!(
        store.head(&Sha256::digest(b"partial")).await.expect("head"),
        None
    );
}

pub async fn list_returns_every_key(fx: impl Fixture) {
    let store = fx.store();
    assert_eq!(
        store.list().count().await,
        0,
        "a fresh prefix lists nothing"
    );
    let mut expected = Vec::new();
    for n in [0usize, 1, 10, 1000, 5000] {
        expected.push(store.put(random_bytes(n)).await.expect("put").key);
    }
    let mut keys: Vec<String> = store.list().try_collect().await.expect("list");
    keys.sort();
    expected.sort();
    assert_eq!(keys, expected);
}

pub async fn deferred_puts_become_durable_at_sync(fx: impl Fixture) {
    let store = fx.store().clone();
    let immediate = store.put(random_bytes(1000)).await.expect("put");
    assert_eq!(immediate.pending, None, "put is durable when it returns");
    store.sync().await.expect("sync with nothing deferred");

    let data = random_bytes(50_000);
    let first = store
        .put_deferred(data.clone())
        .await
        .expect("deferred put");
    assert!(first.created);
    let ticket = first.pending.expect("a deferred put has a ticket");
    assert!(!store.is_durable(ticket), "not durable before a sync");
    // Readable at once, and put-if-absent still holds.
    assert_eq!(store.get(&first.sha256).await.expect("get"), data);
    let again = store.put_deferred(data.clone()).await.expect("second");
    assert!(!again.created);
    assert!(again.pending > first.pending, "tickets are ordered");

    // Concurrent deferred puts (distinct and shared content) from many tasks.
    let shared = random_bytes(20_000);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let mine = random_bytes(3000 + i);
            let shared = shared.clone();
            tokio::spawn(async move {
                let a = store.put_deferred(mine).await.expect("own");
                let b = store.put_deferred(shared).await.expect("shared");
                (a, b)
            })
        })
        .collect();
    let mut outcomes = vec![first.clone(), again.clone()];
    let mut shared_created = 0;
    for task in tasks {
        let (a, b) = task.await.expect("task");
        shared_created += usize::from(b.created);
        outcomes.extend([a, b]);
    }
    assert_eq!(
        shared_created, 1,
        "one of 16 deferred puts creates the shared object"
    );
    store.sync().await.expect("sync");
    for out in &outcomes {
        assert!(
            store.is_durable(out.pending.expect("ticket")),
            "{}",
            out.key
        );
        assert_eq!(
            store.verify(&out.sha256).await.expect("verify"),
            Verification::Ok
        );
    }
    // A put after the sync waits for the next one.
    let late = store.put_deferred(random_bytes(10)).await.expect("late");
    assert!(!store.is_durable(late.pending.expect("ticket")));
    store.sync().await.expect("second sync");
    assert!(store.is_durable(late.pending.expect("ticket")));
    let keys: Vec<String> = store.list().try_collect().await.expect("list");
    assert_eq!(keys.len(), 2 + 16 + 1 + 1, "{keys:?}");
}

/// What garbage collection relies on: every object listed with its size and a
/// modification time, removal only when unmodified since the cutoff, and a put
/// after a removal storing the object again.
pub async fn objects_list_sizes_and_removal_respects_the_cutoff(fx: impl Fixture) {
    use std::time::{Duration, SystemTime};
    use store::Removal;
    let store = fx.store();
    let before = SystemTime::now() - Duration::from_secs(120);
    let data = random_bytes(4321);
    let put = store.put(data.clone()).await.expect("put");
    let objects: Vec<store::StoredObject> = store.objects().try_collect().await.expect("objects");
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].sha256, put.sha256);
    assert_eq!(objects[0].key, put.key);
    assert_eq!(objects[0].size, 4321);
    assert!(
        objects[0].modified > before,
        "a new object is younger than two minutes"
    );

    // Modified after the cutoff: kept.
    let kept = store
        .remove_if_unmodified(&put.sha256, before)
        .await
        .expect("remove");
    assert_eq!(kept, Removal::Kept);
    assert_eq!(
        store.verify(&put.sha256).await.expect("verify"),
        Verification::Ok
    );

    let later = SystemTime::now() + Duration::from_secs(5);
    let removed = store
        .remove_if_unmodified(&put.sha256, later)
        .await
        .expect("remove");
    assert_eq!(removed, Removal::Removed);
    assert_eq!(
        store.verify(&put.sha256).await.expect("verify"),
        Verification::Missing
    );
    assert_eq!(
        store
            .remove_if_unmodified(&put.sha256, later)
            .await
            .expect("remove again"),
        Removal::Absent
    );
    let again = store.put(data.clone()).await.expect("put again");
    assert!(again.created, "a removed object is stored anew");
    assert_eq!(store.get(&put.sha256).await.expect("get"), data);
    assert!(
        store
            .abandoned_writes(later)
            .await
            .expect("abandoned writes")
            .is_empty(),
        "finished puts leave no unfinished write"
    );
}

/// The two-phase removal gc relies on: an object moved to the trash is gone from the
/// objects (listing, verify) but restorable; the trash lists it with the time of the move;
/// deleting from the trash respects its own cutoff; a put after trashing stores anew and a
/// restore over it is harmless (same bytes).
pub async fn trash_keeps_a_removal_recoverable_until_its_own_period_ends(fx: impl Fixture) {
    use std::time::{Duration, SystemTime};
    use store::Removal;
    let store = fx.store();
    let data = random_bytes(2345);
    let other = random_bytes(10);
    let put = store.put(data.clone()).await.expect("put");
    let kept = store.put(other.clone()).await.expect("put other");
    let before = SystemTime::now() - Duration::from_secs(120);
    assert_eq!(
        store
            .trash_if_unmodified(&put.sha256, before)
            .await
            .expect("trash"),
        Removal::Kept,
        "modified after the cutoff"
    );
    // S3 keeps whole seconds: a cutoff a little ahead covers an object written just now.
    let later = SystemTime::now() + Duration::from_secs(5);
    let moved_at = SystemTime::now() - Duration::from_secs(2);
    assert_eq!(
        store
            .trash_if_unmodified(&put.sha256, later)
            .await
            .expect("trash"),
        Removal::Removed
    );
    assert_eq!(
        store.verify(&put.sha256).await.expect("verify"),
        Verification::Missing
    );
    let objects: Vec<store::StoredObject> = store.objects().try_collect().await.expect("objects");
    assert_eq!(
        objects.iter().map(|o| o.sha256).collect::<Vec<_>>(),
        vec![kept.sha256],
        "the trash is not an object"
    );
    let trashed: Vec<store::StoredObject> = store.trashed().try_collect().await.expect("trash");
    assert_eq!(trashed.len(), 1);
    assert_eq!(trashed[0].sha256, put.sha256);
    assert_eq!(trashed[0].size, 2345);
    assert!(
        trashed[0].modified >= moved_at,
        "the trash's age counts from the move"
    );
    assert_eq!(
        store
            .trash_if_unmodified(&put.sha256, later)
            .await
            .expect("again"),
        Removal::Absent
    );

    // Restore: back, whole, and young.
    assert!(store.restore(&put.sha256).await.expect("restore"));
    assert!(
        !store.restore(&put.sha256).await.expect("restore twice"),
        "nothing left in the trash"
    );
    assert_eq!(store.get(&put.sha256).await.expect("get"), data);
    let objects: Vec<store::StoredObject> = store.objects().try_collect().await.expect("objects");
    let restored = objects
        .iter()
        .find(|o| o.sha256 == put.sha256)
        .expect("listed");
    assert!(
        restored.modified >= moved_at,
        "a restored object looks young to gc"
    );

    // Trashed again; a writer stores the same bytes meanwhile: a restore over it is harmless.
    store
        .trash_if_unmodified(&put.sha256, later)
        .await
        .expect("trash");
    assert!(store.put(data.clone()).await.expect("put anew").created);
    assert!(store.restore(&put.sha256).await.expect("restore over it"));
    assert_eq!(store.get(&put.sha256).await.expect("get"), data);

    // Deleting from the trash respects its cutoff (the time of the move).
    store
        .trash_if_unmodified(&put.sha256, later)
        .await
        .expect("trash");
    assert_eq!(
        store
            .remove_trashed_if_unmodified(&put.sha256, before)
            .await
            .expect("purge"),
        Removal::Kept,
        "moved to the trash after the cutoff"
    );
    assert_eq!(
        store
            .remove_trashed_if_unmodified(&put.sha256, later)
            .await
            .expect("purge"),
        Removal::Removed
    );
    assert!(!store.restore(&put.sha256).await.expect("restore gone"));
    let trashed: Vec<store::StoredObject> = store.trashed().try_collect().await.expect("trash");
    assert!(trashed.is_empty());
    assert_eq!(
        store.get(&kept.sha256).await.expect("other"),
        other,
        "untouched"
    );
}

/// The store's clock, read by a probe object that is not left behind.
pub async fn the_stores_clock_reads_close_to_this_hosts(fx: impl Fixture) {
    let store = fx.store();
    let reading = store.clock().await.expect("clock");
    assert!(reading.before <= reading.after);
    assert!(
        reading.skew_secs().abs() < 5.0,
        "a store on this host keeps this host's time: {reading:?}"
    );
    let objects: Vec<store::StoredObject> = store.objects().try_collect().await.expect("objects");
    assert!(objects.is_empty(), "no probe left among the objects");
    let trashed: Vec<store::StoredObject> = store.trashed().try_collect().await.expect("trash");
    assert!(trashed.is_empty());
}

/// Ledger heads (issue 26): records beside the objects, never among them or in the trash;
/// listed, read back and removed by digest.
pub async fn ledger_heads_live_beside_the_objects(fx: impl Fixture) {
    let store = fx.store();
    let object = store.put(random_bytes(100)).await.expect("put");
    let record = Bytes::from_static(br#"{"mailbox":"ann@example.com","seq":7}"#);
    let sha = store
        .put_ledger_head(record.clone())
        .await
        .expect("put head");
    assert_eq!(
        store.put_ledger_head(record.clone()).await.expect("again"),
        sha,
        "the same record twice is one record"
    );
    let heads: Vec<store::StoredObject> = store.ledger_heads().try_collect().await.expect("heads");
    assert_eq!(
        heads.iter().map(|h| h.sha256).collect::<Vec<_>>(),
        vec![sha]
    );
    let objects: Vec<store::StoredObject> = store.objects().try_collect().await.expect("objects");
    assert_eq!(
        objects.iter().map(|o| o.sha256).collect::<Vec<_>>(),
        vec![object.sha256],
        "a head is not an object"
    );
    let trashed: Vec<store::StoredObject> = store.trashed().try_collect().await.expect("trash");
    assert!(trashed.is_empty());
    assert_eq!(
        store.get_ledger_head(&sha).await.expect("get"),
        Some(record)
    );
    store.remove_ledger_head(&sha).await.expect("remove");
    assert_eq!(store.get_ledger_head(&sha).await.expect("get"), None);
    let heads: Vec<store::StoredObject> = store.ledger_heads().try_collect().await.expect("heads");
    assert!(heads.is_empty());
    store
        .remove_ledger_head(&sha)
        .await
        .expect("removing twice is fine");
}
