//! What the run left behind, read after it: the items as they closed (through
//! the API, as any client would see them), each bidder's notices, and the
//! refresh-token families (from the database: no API shows them).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Statement};

use crate::checker::{ClosedItem, Notice, StoredBid};
use crate::load::Balancer;
use crate::setup_request;

/// Waits for every item to close, then reads its revealed bids.
pub async fn read_closed_items(
    balancer: &Balancer,
    items: &[uuid::Uuid],
) -> anyhow::Result<Vec<ClosedItem>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut closed = Vec::new();
    for item in items {
        let body = loop {
            let (status, body) = setup_request(balancer, |client, url| {
                client.get(format!("{url}/api/v1/items/{item}"))
            })
            .await?;
            if status == 200 && body["status"] == "closed" {
                break body;
            }
            if Instant::now() > deadline {
                bail!("item {item} did not close: {body}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let mut bids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (status, page) = setup_request(balancer, |client, url| {
                // Cursors are URL-safe already.
                let after = cursor
                    .as_deref()
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default();
                client.get(format!("{url}/api/v1/items/{item}/bids?limit=100{after}"))
            })
            .await?;
            if status != 200 {
                bail!("revealed bids of {item}: {status} {page}");
            }
            bids.extend(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(StoredBid::of),
            );
            match page["next_cursor"].as_str() {
                Some(next) if page["has_more"] == true => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
        closed.push(ClosedItem {
            id: *item,
            bids,
            final_price: body["final_price"].as_i64(),
            winner: body["winner_id"].as_str().and_then(|w| w.parse().ok()),
        });
    }
    Ok(closed)
}

/// Every notice each bidder holds: logs each in again (the run may have
/// outlived their access tokens) and pages through `/me/notifications`.
pub async fn read_notices(
    balancer: &Balancer,
    bidders: &[(uuid::Uuid, String)],
) -> anyhow::Result<Vec<Notice>> {
    let mut notices = Vec::new();
    for (user, email) in bidders {
        let token = crate::login(balancer, email).await?;
        let mut cursor: Option<String> = None;
        loop {
            let (status, page) = setup_request(balancer, |client, url| {
                let after = cursor
                    .as_deref()
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default();
                client
                    .get(format!("{url}/api/v1/me/notifications?limit=100{after}"))
                    .bearer_auth(&token)
            })
            .await?;
            if status != 200 {
                bail!("notices of {email}: {status} {page}");
            }
            notices.extend(
                page["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|notice| {
                        Some(Notice {
                            user: *user,
                            item: notice["data"]["item_id"].as_str()?.parse().ok()?,
                            kind: notice["type"].as_str()?.to_owned(),
                        })
                    }),
            );
            match page["next_cursor"].as_str() {
                Some(next) if page["has_more"] == true => cursor = Some(next.to_owned()),
                _ => break,
            }
        }
    }
    Ok(notices)
}

/// The sessions (refresh-token families) holding more than one live
/// (unspent) token, with how many: a family is a chain, each rotation spends
/// one token and issues one, so two live tokens mean one token had two
/// successors.
pub async fn forked_families(database_url: &str) -> anyhow::Result<Vec<(uuid::Uuid, i64)>> {
    let database = sea_orm::Database::connect(database_url)
        .await
        .context("connecting to the run's database")?;
    let rows = database
        .query_all_raw(Statement::from_string(
            database.get_database_backend(),
            "SELECT session_id, count(*) AS live FROM refresh_tokens \
             WHERE spent_at IS NULL GROUP BY session_id HAVING count(*) > 1",
        ))
        .await?;
    let forked = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get::<uuid::Uuid>("", "session_id")?,
                row.try_get::<i64>("", "live")?,
            ))
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    database.close().await?;
    Ok(forked)
}
