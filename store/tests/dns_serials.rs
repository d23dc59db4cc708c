//! Served zone serials kept across restarts: saved, replaced per view and zone, and read back
//! with every bit of the serial and digest intact.

mod common;

use postern_store::testing::TestDb;
use postern_store::ZoneSerialRow;

both_backends!(zone_serials_round_trip);

async fn zone_serials_round_trip(db: &TestDb) {
    let store = db.open().await;
    assert!(store.dns_zone_serials().await.unwrap().is_empty());
    let row = |view, zone, serial, digest| ZoneSerialRow {
        view,
        zone,
        serial,
        digest,
    };
    store
        .save_dns_zone_serials(&[
            row("internal", "example.test.", u32::MAX, u64::MAX - 1),
            row("external", "example.test.", 7, 1),
        ])
        .await
        .unwrap();
    store
        .save_dns_zone_serials(&[row("external", "example.test.", 8, 2)])
        .await
        .unwrap();
    let mut got = store.dns_zone_serials().await.unwrap();
    got.sort();
    assert_eq!(
        got,
        [
            ("external".into(), "example.test.".into(), 8, 2),
            (
                "internal".into(),
                "example.test.".into(),
                u32::MAX,
                u64::MAX - 1
            ),
        ]
    );
    store.close().await;
}
