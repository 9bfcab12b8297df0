//! WebSocket tickets: a browser cannot send an `Authorization` header when
//! it opens a WebSocket, and a long-lived token must never sit in a URL
//! (proxies and logs keep URLs). So an authenticated request first trades its
//! access token for a ticket that works once, within 30 seconds, on any
//! instance; the socket is opened with `?ticket=…`.
//!
//! A ticket belongs to the session it was issued in, and the socket lives
//! only as long as that session: the server checks it again at every ping,
//! so logout, logout-all, a password reset or a deactivation also close the
//! socket.

use std::sync::Arc;

use chrono::Duration;
use zeroize::Zeroizing;

use super::Principal;
use super::ports::{SecretTokens, SessionStore, TicketPurpose, TicketStore};
use crate::ids::SessionId;
use crate::ports::{Clock, StoreError};
use crate::user::User;

/// A ticket as handed to its holder.
#[derive(Clone)]
pub struct IssuedTicket {
    /// The ticket itself (URL-safe).
    pub ticket: Zeroizing<String>,
    /// How long it works.
    pub expires_in: Duration,
}

impl std::fmt::Debug for IssuedTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTicket")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Whom a redeemed ticket opened a socket for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketHolder {
    /// The account, active when the ticket was redeemed.
    pub user: User,
    /// The session the ticket was issued in.
    pub session: SessionId,
}

/// Issues and redeems WebSocket tickets.
#[derive(Clone)]
pub struct TicketService {
    tickets: Arc<dyn TicketStore>,
    secrets: Arc<dyn SecretTokens>,
    sessions: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
}

impl std::fmt::Debug for TicketService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketService")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TicketService {
    /// How long a ticket works: 30 seconds.
    pub const LIFETIME: Duration = Duration::seconds(30);

    /// Wires the service to its ports.
    #[must_use]
    pub fn new(
        tickets: Arc<dyn TicketStore>,
        secrets: Arc<dyn SecretTokens>,
        sessions: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TicketService {
            tickets,
            secrets,
            sessions,
            clock,
            lifetime: Self::LIFETIME,
        }
    }

    /// How long a ticket to link an identity works: 60 seconds, the time
    /// to leave for the provider and come back is not in it (the ticket is
    /// spent when the flow starts).
    pub const LINK_LIFETIME: Duration = Duration::seconds(60);

    /// A new WebSocket ticket for the authenticated user's session.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn issue(&self, principal: &Principal) -> Result<IssuedTicket, StoreError> {
        self.issue_for(principal, TicketPurpose::Socket, self.lifetime)
            .await
    }

    /// A new ticket that starts linking an OpenID identity to the
    /// authenticated user's account: a browser leaves for the provider by a
    /// top-level navigation, which carries no `Authorization` header.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn issue_link(&self, principal: &Principal) -> Result<IssuedTicket, StoreError> {
        self.issue_for(principal, TicketPurpose::LinkIdentity, Self::LINK_LIFETIME)
            .await
    }

    async fn issue_for(
        &self,
        principal: &Principal,
        purpose: TicketPurpose,
        lifetime: Duration,
    ) -> Result<IssuedTicket, StoreError> {
        let secret = self.secrets.generate();
        self.tickets
            .issue_ticket(
                secret.digest,
                purpose,
                principal.session,
                self.clock.now() + lifetime,
            )
            .await?;
        Ok(IssuedTicket {
            ticket: secret.plain,
            expires_in: lifetime,
        })
    }

    /// The active account and live session a link ticket was issued in,
    /// using the ticket up — only when `refresh_token` (the browser's
    /// refresh cookie, which a cross-site page cannot make it send) belongs
    /// to that same session: a ticket alone, slipped into someone else's
    /// browser, links nothing. `None` as for [`redeem`](Self::redeem), or
    /// without that cookie.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn redeem_link(
        &self,
        ticket: &str,
        refresh_token: Option<&str>,
    ) -> Result<Option<SocketHolder>, StoreError> {
        let Some(refresh) = refresh_token.filter(|r| self.secrets.well_formed(r)) else {
            return Ok(None);
        };
        let Some(holder) = self.redeem_for(ticket, TicketPurpose::LinkIdentity).await? else {
            return Ok(None);
        };
        let browser_session = self
            .sessions
            .session_of_refresh_token(self.secrets.digest(refresh), self.clock.now())
            .await?;
        Ok((browser_session == Some(holder.session)).then_some(holder))
    }

    /// The active account and live session a ticket was issued in, using
    /// the ticket up; `None` for a malformed (never looked up), unknown,
    /// used or expired ticket, an ended session or a deactivated account.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<SocketHolder>, StoreError> {
        self.redeem_for(ticket, TicketPurpose::Socket).await
    }

    async fn redeem_for(
        &self,
        ticket: &str,
        purpose: TicketPurpose,
    ) -> Result<Option<SocketHolder>, StoreError> {
        if !self.secrets.well_formed(ticket) {
            return Ok(None);
        }
        let digest = self.secrets.digest(ticket);
        let Some(session) = self
            .tickets
            .redeem_ticket(digest, purpose, self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .sessions
            .active_session_user(session)
            .await?
            .map(|user| SocketHolder { user, session }))
    }

    /// Whether `holder`'s socket may stay open: its session was not revoked
    /// and can still be renewed (it has not simply lapsed), and its account
    /// is still active.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn still_valid(&self, holder: &SocketHolder) -> Result<bool, StoreError> {
        let (user, renewable) = futures_util::future::join(
            self.sessions.active_session_user(holder.session),
            self.sessions
                .session_renewable(holder.session, self.clock.now()),
        )
        .await;
        Ok(user?.is_some_and(|user| user.id == holder.user.id) && renewable?)
    }

    /// Forgets expired tickets nobody redeemed.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.tickets.purge_expired_tickets(self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::eq;

    use super::*;
    use crate::auth::ports::{MockSecretTokens, MockSessionStore, MockTicketStore};
    use crate::auth::tokens::{SecretToken, TokenDigest};
    use crate::email::Email;
    use crate::ids::{SessionId, TokenId, UserId};
    use crate::ports::MockClock;
    use crate::user::Role;

    fn t0() -> crate::item::Timestamp {
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap()
    }

    fn account() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("wes@example.com").unwrap(),
            display_name: "Wes".into(),
            role: Role::User,
            email_verified: true,
            is_active: true,
            notify_email: true,
            totp_enabled: false,
            created_at: t0(),
        }
    }

    fn service(tickets: MockTicketStore, sessions: MockSessionStore) -> TicketService {
        let mut secrets = MockSecretTokens::new();
        secrets.expect_generate().returning(|| SecretToken {
            plain: Zeroizing::new("the-ticket".into()),
            digest: TokenDigest([7; 32]),
        });
        secrets
            .expect_digest()
            .returning(|plain| TokenDigest([if plain == "the-ticket" { 7 } else { 0 }; 32]));
        secrets
            .expect_well_formed()
            .returning(|plain| plain.len() > 5);
        let mut clock = MockClock::new();
        clock.expect_now().return_const(t0());
        TicketService::new(
            Arc::new(tickets),
            Arc::new(secrets),
            Arc::new(sessions),
            Arc::new(clock),
        )
    }

    #[test]
    fn a_ticket_lives_thirty_seconds_in_its_session_and_only_its_digest_is_stored() {
        let session = SessionId::generate();
        let mut tickets = MockTicketStore::new();
        tickets
            .expect_issue_ticket()
            .with(
                eq(TokenDigest([7; 32])),
                eq(TicketPurpose::Socket),
                eq(session),
                eq(t0() + Duration::seconds(30)),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let svc = service(tickets, MockSessionStore::new());
        let principal = Principal {
            user: account(),
            session,
            token: TokenId::generate(),
            expires_at: t0() + Duration::minutes(15),
        };
        let issued = futures_executor::block_on(svc.issue(&principal)).unwrap();
        assert_eq!(issued.ticket.as_str(), "the-ticket");
        assert_eq!(issued.expires_in, Duration::seconds(30));
        assert!(!format!("{issued:?}").contains("the-ticket"));
    }

    #[test]
    fn a_link_ticket_lives_a_minute_and_is_redeemed_only_as_one() {
        let user = account();
        let session = SessionId::generate();
        let mut tickets = MockTicketStore::new();
        tickets
            .expect_issue_ticket()
            .with(
                eq(TokenDigest([7; 32])),
                eq(TicketPurpose::LinkIdentity),
                eq(session),
                eq(t0() + Duration::seconds(60)),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        tickets
            .expect_redeem_ticket()
            .with(
                eq(TokenDigest([7; 32])),
                eq(TicketPurpose::LinkIdentity),
                eq(t0()),
            )
            .times(1)
            .returning(move |_, _, _| Ok(Some(session)));
        let mut sessions = MockSessionStore::new();
        let holder = user.clone();
        sessions
            .expect_active_session_user()
            .returning(move |_| Ok(Some(holder.clone())));
        sessions
            .expect_session_of_refresh_token()
            .returning(move |_, _| Ok(Some(session)));
        let svc = service(tickets, sessions);
        let principal = Principal {
            user: user.clone(),
            session,
            token: TokenId::generate(),
            expires_at: t0() + Duration::minutes(15),
        };
        let issued = futures_executor::block_on(svc.issue_link(&principal)).unwrap();
        assert_eq!(issued.expires_in, Duration::seconds(60));
        let redeemed =
            futures_executor::block_on(svc.redeem_link("the-ticket", Some("the-cookie"))).unwrap();
        assert_eq!(redeemed, Some(SocketHolder { user, session }));
    }

    #[test]
    fn a_link_ticket_needs_the_refresh_cookie_of_its_own_session() {
        let user = account();
        let (session, other) = (SessionId::generate(), SessionId::generate());
        for (cookie, browser_session) in [(None, None), (Some("the-cookie"), Some(other))] {
            let mut tickets = MockTicketStore::new();
            tickets
                .expect_redeem_ticket()
                .returning(move |_, _, _| Ok(Some(session)));
            let mut sessions = MockSessionStore::new();
            let holder = user.clone();
            sessions
                .expect_active_session_user()
                .returning(move |_| Ok(Some(holder.clone())));
            sessions
                .expect_session_of_refresh_token()
                .returning(move |_, _| Ok(browser_session));
            let svc = service(tickets, sessions);
            let refused =
                futures_executor::block_on(svc.redeem_link("the-ticket", cookie)).unwrap();
            assert_eq!(refused, None, "{cookie:?} of {browser_session:?}");
        }
        // An unknown ticket with the right cookie is nothing either.
        let mut tickets = MockTicketStore::new();
        tickets.expect_redeem_ticket().returning(|_, _, _| Ok(None));
        let svc = service(tickets, MockSessionStore::new());
        assert_eq!(
            futures_executor::block_on(svc.redeem_link("the-ticket", Some("the-cookie"))).unwrap(),
            None
        );
    }

    #[test]
    fn a_redeemed_ticket_names_its_live_session_and_nothing_else_does() {
        let user = account();
        let (live, ended) = (SessionId::generate(), SessionId::generate());
        let mut tickets = MockTicketStore::new();
        let mut redemptions = vec![Some(ended), Some(live)];
        tickets
            .expect_redeem_ticket()
            .with(
                eq(TokenDigest([7; 32])),
                eq(TicketPurpose::Socket),
                eq(t0()),
            )
            .returning(move |_, _, _| Ok(redemptions.pop().flatten()));
        tickets.expect_redeem_ticket().returning(|_, _, _| Ok(None));
        let mut sessions = MockSessionStore::new();
        let holder = user.clone();
        sessions
            .expect_active_session_user()
            .returning(move |session| Ok((session == live).then(|| holder.clone())));
        let svc = service(tickets, sessions);
        let first = futures_executor::block_on(svc.redeem("the-ticket")).unwrap();
        assert_eq!(
            first,
            Some(SocketHolder {
                user,
                session: live
            })
        );
        let after_logout = futures_executor::block_on(svc.redeem("the-ticket")).unwrap();
        assert!(
            after_logout.is_none(),
            "an ended session (or a deactivated account) gets no socket"
        );
        let unknown = futures_executor::block_on(svc.redeem("forged")).unwrap();
        assert!(unknown.is_none());
    }

    #[test]
    fn a_malformed_ticket_is_refused_without_a_lookup() {
        // Neither store expects a call: any would fail the test.
        let svc = service(MockTicketStore::new(), MockSessionStore::new());
        for garbage in ["", "x", "short"] {
            assert!(
                futures_executor::block_on(svc.redeem(garbage))
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_socket_stays_valid_exactly_while_its_session_does() {
        let user = account();
        let holder = SocketHolder {
            user: user.clone(),
            session: SessionId::generate(),
        };
        // Answers in order, popped from the end: the session's user, and
        // whether the session can be renewed.
        let mut users = vec![Some(user.clone()), None, Some(account()), Some(user)];
        let mut renewable = vec![false, true, true, true];
        let mut sessions = MockSessionStore::new();
        sessions
            .expect_active_session_user()
            .with(eq(holder.session))
            .times(4)
            .returning(move |_| Ok(users.pop().unwrap()));
        sessions
            .expect_session_renewable()
            .with(eq(holder.session), eq(t0()))
            .times(4)
            .returning(move |_, _| Ok(renewable.pop().unwrap()));
        let svc = service(MockTicketStore::new(), sessions);
        let check = || futures_executor::block_on(svc.still_valid(&holder)).unwrap();
        assert!(check(), "its session is live");
        assert!(!check(), "the session belongs to someone else");
        assert!(!check(), "the session was revoked");
        assert!(
            !check(),
            "the session lapsed: nothing left to renew it with"
        );
    }

    #[test]
    fn the_ticket_service_prints_its_lifetime_and_none_of_its_ports() {
        let svc = service(MockTicketStore::new(), MockSessionStore::new());
        assert_eq!(
            format!("{svc:?}"),
            format!(
                "TicketService {{ lifetime: {:?}, .. }}",
                Duration::seconds(30)
            )
        );
    }

    #[test]
    fn purging_asks_the_store_with_the_current_time() {
        let mut tickets = MockTicketStore::new();
        tickets
            .expect_purge_expired_tickets()
            .with(eq(t0()))
            .returning(|_| Ok(3));
        let svc = service(tickets, MockSessionStore::new());
        assert_eq!(futures_executor::block_on(svc.purge_expired()).unwrap(), 3);
    }
}
