//! The signed-zone state the DNS keeps in the store (signatures by RRset, journal of
//! differences), on SQLite and PostgreSQL: written in batches, replaced per RRset, read back
//! per view and zone, and the journal pruned on write to its entry and byte limits.

mod common;

use postern_store::testing::TestDb;
use postern_store::{DnsSignatureRow, DnsSignedChange, DnsSignedEntry, JournalLimits};

both_backends!(
    signatures_and_journal_round_trip,
    journal_is_pruned_on_write
);

fn sig(owner: &str, rtype: u16, digest: u64, bytes: &[u8]) -> DnsSignatureRow {
    DnsSignatureRow {
        owner: owner.to_owned(),
        rtype,
        digest,
        rrsigs: bytes.to_vec(),
    }
}

fn entry(from: u32, size: usize) -> DnsSignedEntry {
    DnsSignedEntry {
        from_serial: from,
        to_serial: from + 1,
        removed: vec![0; size / 2],
        added: vec![0xff; size - size / 2],
    }
}

/// A change of `main`'s `example.test.`.
fn change<'a>(
    serial: u32,
    upserts: &'a [DnsSignatureRow],
    deletes: &'a [(String, u16)],
    entry: Option<&'a DnsSignedEntry>,
) -> DnsSignedChange<'a> {
    DnsSignedChange {
        view: "main",
        zone: "example.test.",
        serial,
        entry,
        upserts,
        deletes,
    }
}

const ROOMY: JournalLimits = JournalLimits {
    max_changes: 100,
    max_bytes: 1 << 20,
};

async fn signatures_and_journal_round_trip(db: &TestDb) {
    let store = db.open().await;
    assert!(store.dns_signed_zones().await.unwrap().is_empty());
    // A first signing: more rows than one INSERT holds; digests with the top bit set.
    let first: Vec<DnsSignatureRow> = (0..1234u16)
        .map(|i| {
            sig(
                &format!("n{i}.example.test."),
                1,
                u64::MAX - u64::from(i),
                &[i as u8, 0, 255],
            )
        })
        .collect();
    store
        .save_dns_signed_change(change(10, &first, &[], None), ROOMY)
        .await
        .unwrap();
    // The same zone in another view is kept apart.
    let other = [sig("example.test.", 6, 7, b"other view")];
    store
        .save_dns_signed_change(
            DnsSignedChange {
                view: "internal",
                ..change(10, &other, &[], None)
            },
            ROOMY,
        )
        .await
        .unwrap();
    // A change: one RRset re-signed, one gone, the journal entry.
    let e = entry(10, 40);
    store
        .save_dns_signed_change(
            change(
                11,
                &[sig("n1.example.test.", 1, 99, b"new")],
                &[("n2.example.test.".to_owned(), 1)],
                Some(&e),
            ),
            ROOMY,
        )
        .await
        .unwrap();
    // Another node signed the same step (or the same serial) too, later: the first one stands.
    let late = [sig("n1.example.test.", 1, 99, b"other node")];
    let mut same_step = e.clone();
    same_step.added = b"other node".to_vec();
    assert!(!store
        .save_dns_signed_change(change(11, &late, &[], Some(&same_step)), ROOMY)
        .await
        .unwrap());
    assert!(!store
        .save_dns_signed_change(
            change(
                11,
                &[sig("n1.example.test.", 1, 99, b"same serial")],
                &[],
                None,
            ),
            ROOMY,
        )
        .await
        .unwrap());
    // The version that stands, for the late node to adopt.
    let version = store
        .dns_signed_version("main", "example.test.", 11)
        .await
        .unwrap();
    assert_eq!(version.signatures, [sig("n1.example.test.", 1, 99, b"new")]);
    assert_eq!(version.journal, std::slice::from_ref(&e));
    let zones = store.dns_signed_zones().await.unwrap();
    assert_eq!(
        zones
            .iter()
            .map(|z| (z.view.as_str(), z.zone.as_str()))
            .collect::<Vec<_>>(),
        [("internal", "example.test."), ("main", "example.test.")]
    );
    assert_eq!(zones[0].signatures, other);
    let main = &zones[1];
    assert_eq!(main.signatures.len(), 1233);
    let find = |owner: &str| main.signatures.iter().find(|s| s.owner == owner);
    assert_eq!(
        find("n1.example.test."),
        Some(&sig("n1.example.test.", 1, 99, b"new"))
    );
    assert_eq!(find("n2.example.test."), None);
    assert_eq!(find("n3.example.test."), Some(&first[3]));
    assert_eq!(main.journal, [e]);
}

async fn journal_is_pruned_on_write(db: &TestDb) {
    let store = db.open().await;
    let entries: Vec<DnsSignedEntry> = (0..8).map(|i| entry(i, 100)).collect();
    let save = |e: &DnsSignedEntry, limits| {
        let store = &store;
        let e = e.clone();
        async move {
            store
                .save_dns_signed_change(change(e.to_serial, &[], &[], Some(&e)), limits)
                .await
                .unwrap();
        }
    };
    let journal = || async {
        store.dns_signed_zones().await.unwrap()[0]
            .journal
            .iter()
            .map(|e| e.from_serial)
            .collect::<Vec<_>>()
    };
    let by_count = JournalLimits {
        max_changes: 3,
        max_bytes: 1 << 20,
    };
    for e in &entries[..5] {
        save(e, by_count).await;
    }
    assert_eq!(journal().await, [2, 3, 4], "the last 3 changes");
    let by_bytes = JournalLimits {
        max_changes: 100,
        max_bytes: 250,
    };
    save(&entries[5], by_bytes).await;
    assert_eq!(journal().await, [4, 5], "the last 250 bytes");
    // An entry bigger than the limit is not kept at all (IXFR across it sends the full zone).
    save(&entry(6, 300), by_bytes).await;
    assert!(store.dns_signed_zones().await.unwrap().is_empty());
}
