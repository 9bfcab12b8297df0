//! Bids are sealed at rest and bound to their rows; the database refuses to
//! change them.

use pp_domain::ports::{AuctionStore, PlaceBidError, StoreError};
use pp_testkit::Backend;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, DbBackend, ExprTrait};
use uuid::Uuid;

use crate::on_both_backends;
use crate::support::{Harness, plain, poisoned};

/// Every column of every row of `table`, as one text (blobs in hex).
pub(crate) async fn dump(h: &Harness, table: &str) -> String {
    let conn = h.store.database().connection();
    let sql = match conn.get_database_backend() {
        DbBackend::Postgres => format!("SELECT row_to_json(t)::text AS row FROM {table} t"),
        _ => {
            let columns: Vec<String> = conn
                .query_all_raw(sea_orm::Statement::from_string(
                    DbBackend::Sqlite,
                    format!("SELECT name FROM pragma_table_info('{table}')"),
                ))
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "coalesce(hex({}), '')",
                        r.try_get::<String>("", "name").unwrap()
                    )
                })
                .collect();
            format!("SELECT {} AS row FROM {table}", columns.join(" || ' ' || "))
        }
    };
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "row").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn raw_rows_hold_no_amount_budget_or_step_in_plaintext(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(1_000, 100).await;
    let id = item.item.id;
    let [alice, bob, carol] = <[_; 3]>::try_from(h.bidders(3).await).unwrap();
    h.auctions
        .place_bid(&alice, id, plain(12_345_678))
        .await
        .unwrap();
    h.auctions
        .place_bid(&bob, id, poisoned(23_456_789, 98_765_432, 1_111_111))
        .await
        .unwrap();
    h.auctions
        .place_bid(&carol, id, plain(34_567_890))
        .await
        .unwrap();
    // Bob auto-raised to 34_567_890 + 1_111_111: only that price is public.
    let public_price = 35_679_001;
    assert_eq!(
        h.listed(&item)
            .await
            .standing
            .current_price
            .map(|p| p.minor_units()),
        Some(public_price)
    );

    let rows = format!("{}\n{}", dump(&h, "bids").await, dump(&h, "items").await);
    assert!(
        rows.contains(&public_price.to_string())
            || rows.contains(&hex(public_price.to_string().as_bytes()))
    );
    for secret in [
        12_345_678_i64,
        23_456_789,
        98_765_432,
        1_111_111,
        34_567_890,
    ] {
        let forms = [
            secret.to_string(),
            hex(secret.to_string().as_bytes()),
            hex(&secret.to_be_bytes()),
            hex(&secret.to_le_bytes()),
        ];
        for form in forms {
            assert!(
                !rows.contains(&form),
                "{secret} is stored in plaintext as {form}"
            );
        }
    }
}

async fn a_bid_ciphertext_copied_to_another_row_fails_to_open(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let id = item.item.id;
    let [alice, bob] = <[_; 2]>::try_from(h.bidders(2).await).unwrap();
    let placed = h.auctions.place_bid(&alice, id, plain(150)).await.unwrap();
    let conn = h.store.database().connection();
    let sealed: Vec<u8> = conn
        .query_one(
            Query::select()
                .column("sealed_offer")
                .from("bids")
                .and_where(Expr::col("id").eq(placed.bid.id.as_uuid())),
        )
        .await
        .unwrap()
        .unwrap()
        .try_get("", "sealed_offer")
        .unwrap();
    // Inserting is allowed; the copied ciphertext is bound to alice's row.
    conn.execute(
        Query::insert()
            .into_table("bids")
            .columns([
                "id",
                "item_id",
                "user_id",
                "seq",
                "sealed_offer",
                "created_at",
            ])
            .values_panic([
                Uuid::now_v7().into(),
                id.as_uuid().into(),
                bob.id.as_uuid().into(),
                99_i64.into(),
                sealed.into(),
                chrono::Utc::now().into(),
            ]),
    )
    .await
    .unwrap();
    assert!(matches!(
        h.store.bid_record(id, bob.id).await,
        Err(StoreError::Integrity(_))
    ));
    assert!(matches!(
        h.store.bids_in_order(id, 0, u32::MAX).await,
        Err(StoreError::Integrity(_))
    ));
    assert!(h.store.bid_record(id, alice.id).await.unwrap().is_some());
}

async fn a_standing_copied_to_another_item_fails_to_open(backend: Backend) {
    let h = Harness::new(backend).await;
    let (first, second) = (h.item(100, 5).await, h.item(100, 5).await);
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, first.item.id, plain(150))
        .await
        .unwrap();
    let conn = h.store.database().connection();
    let row = conn
        .query_one(
            Query::select()
                .columns(["sealed_standing", "current_price", "bid_count"])
                .from("items")
                .and_where(Expr::col("id").eq(first.item.id.as_uuid())),
        )
        .await
        .unwrap()
        .unwrap();
    let (sealed, price, count): (Vec<u8>, i64, i64) = (
        row.try_get("", "sealed_standing").unwrap(),
        row.try_get("", "current_price").unwrap(),
        row.try_get("", "bid_count").unwrap(),
    );
    conn.execute(
        Query::update()
            .table("items")
            .values([
                ("sealed_standing", sealed.into()),
                ("current_price", price.into()),
                ("bid_count", count.into()),
            ])
            .and_where(Expr::col("id").eq(second.item.id.as_uuid())),
    )
    .await
    .unwrap();
    let other = h.bidder().await;
    let result = h
        .auctions
        .place_bid(&other, second.item.id, plain(500))
        .await;
    assert!(
        matches!(result, Err(PlaceBidError::Store(StoreError::Integrity(_)))),
        "{result:?}"
    );
}

async fn the_database_refuses_to_update_or_delete_a_bid(backend: Backend) {
    let h = Harness::new(backend).await;
    let item = h.item(100, 5).await;
    let bidder = h.bidder().await;
    h.auctions
        .place_bid(&bidder, item.item.id, plain(150))
        .await
        .unwrap();
    let conn = h.store.database().connection();
    let mut refused = vec![
        conn.execute_unprepared("UPDATE bids SET seq = seq + 100")
            .await,
        conn.execute_unprepared("DELETE FROM bids").await,
    ];
    if backend == Backend::Postgres {
        refused.push(conn.execute_unprepared("TRUNCATE bids").await);
    }
    for result in refused {
        let err = result.expect_err("the statement must be refused");
        assert!(err.to_string().contains("bids are immutable"), "{err}");
    }
    let stored = h
        .store
        .bids_in_order(item.item.id, 0, u32::MAX)
        .await
        .unwrap();
    assert_eq!(stored.iter().map(|b| b.seq).collect::<Vec<_>>(), [1]);
}

on_both_backends!(
    raw_rows_hold_no_amount_budget_or_step_in_plaintext,
    a_bid_ciphertext_copied_to_another_row_fails_to_open,
    a_standing_copied_to_another_item_fails_to_open,
    the_database_refuses_to_update_or_delete_a_bid,
);
