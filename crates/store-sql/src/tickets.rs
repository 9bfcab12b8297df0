//! The [`TicketStore`] port on SQL: tickets (for a WebSocket, or to link an
//! identity) as digests in `ws_tickets`, each with its purpose and the
//! session it was issued in. Redeeming deletes the row, so a ticket works exactly once,
//! on whichever instance the socket reaches.

use async_trait::async_trait;
use pp_domain::auth::ports::{TicketPurpose, TicketStore};
use pp_domain::auth::tokens::TokenDigest;
use pp_domain::ports::StoreError;
use pp_domain::{SessionId, Timestamp};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::SqlStore;
use crate::auction::db_time;
use crate::entities::ws_tickets;
use crate::errors::store_error;

#[async_trait]
impl TicketStore for SqlStore {
    async fn issue_ticket(
        &self,
        digest: TokenDigest,
        purpose: TicketPurpose,
        session: SessionId,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let _gate = self.database().write_gate().await;
        ws_tickets::Entity::insert(ws_tickets::ActiveModel {
            digest: Set(digest.0.to_vec()),
            session_id: Set(session.as_uuid()),
            expires_at: Set(db_time(expires_at)),
            purpose: Set(purpose.as_str().to_owned()),
        })
        .exec_without_returning(self.database().connection())
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn redeem_ticket(
        &self,
        digest: TokenDigest,
        purpose: TicketPurpose,
        now: Timestamp,
    ) -> Result<Option<SessionId>, StoreError> {
        // One conditional DELETE: of two concurrent redemptions only one
        // gets the row back.
        let _gate = self.database().write_gate().await;
        let redeemed = ws_tickets::Entity::delete_many()
            .filter(ws_tickets::Column::Digest.eq(digest.0.to_vec()))
            .filter(ws_tickets::Column::ExpiresAt.gt(now))
            .filter(ws_tickets::Column::Purpose.eq(purpose.as_str()))
            .exec_with_returning(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(redeemed
            .first()
            .map(|row| SessionId::from_uuid(row.session_id)))
    }

    async fn purge_expired_tickets(&self, now: Timestamp) -> Result<u64, StoreError> {
        let _gate = self.database().write_gate().await;
        let purged = ws_tickets::Entity::delete_many()
            .filter(ws_tickets::Column::ExpiresAt.lte(now))
            .exec(self.database().connection())
            .await
            .map_err(store_error)?;
        Ok(purged.rows_affected)
    }
}
