//! Sessions: logging in, refreshing (with reuse detection), logging out,
//! and judging a bearer token.

use super::*;

impl AuthService {
    pub(super) fn token_pair(
        &self,
        user: &User,
        session: SessionId,
        refresh: &SecretToken,
        now: Timestamp,
    ) -> Result<TokenPair, StoreError> {
        let lifetimes = self.policy.lifetimes;
        let claims = AccessClaims {
            user: user.id,
            role: user.role,
            token: TokenId::generate(),
            session,
            issued_at: now,
            expires_at: now + lifetimes.access,
        };
        Ok(TokenPair {
            access_token: self.ports.access.issue(&claims)?,
            access_expires_in: lifetimes.access,
            refresh_token: refresh.plain.clone(),
            refresh_expires_in: lifetimes.refresh,
        })
    }

    pub(super) fn new_refresh(
        &self,
        session: SessionId,
        user: UserId,
        now: Timestamp,
    ) -> (SecretToken, NewRefreshToken) {
        let token = self.ports.secrets.generate();
        let record = NewRefreshToken {
            digest: token.digest,
            session,
            user,
            issued_at: now,
            expires_at: now + self.policy.lifetimes.refresh,
        };
        (token, record)
    }

    /// A new session for `user`, unless the account's stored hash is no
    /// longer `verified` or the account was deactivated meanwhile (`None`).
    pub(super) async fn start_session(
        &self,
        user: &User,
        verified: &PasswordHash,
    ) -> Result<Option<TokenPair>, StoreError> {
        let now = self.now();
        let (token, record) = self.new_refresh(SessionId::generate(), user.id, now);
        match self.ports.sessions.start_session(record, verified).await? {
            SessionStart::Started => {
                Ok(Some(self.token_pair(user, record.session, &token, now)?))
            }
            SessionStart::Stale => Ok(None),
        }
    }

    /// Logs in: one answer for an unknown address and a wrong password, in the
    /// same time; lockout after repeated failures.
    ///
    /// # Errors
    /// [`LoginError`] naming why.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        context: &RequestContext,
    ) -> Result<TokenPair, LoginError> {
        let now = self.now();
        let credentials = match Email::parse(email) {
            Ok(email) => self.ports.users.credentials_by_email(&email).await?,
            Err(_) => None,
        };
        let Some(credentials) = credentials else {
            self.ports.hasher.verify(password, None).await?;
            self.audit(
                AuditEvent::LoginFailed,
                None,
                None,
                context,
                Some("unknown account".into()),
            )
            .await?;
            return Err(LoginError::InvalidCredentials);
        };
        let user = &credentials.user;
        let needs_rehash = match self
            .check_password(&credentials, password, now, context, CheckPlace::Login)
            .await?
        {
            PasswordCheck::Right { needs_rehash } => needs_rehash,
            PasswordCheck::Wrong => return Err(LoginError::InvalidCredentials),
            PasswordCheck::Locked { retry_after } => {
                return Err(LoginError::Locked { retry_after });
            }
        };
        if !user.is_active {
            return Err(LoginError::AccountDisabled);
        }
        if self.policy.require_verified_email && !user.email_verified {
            return Err(LoginError::EmailNotVerified);
        }
        // The hash the password was checked against: a reset, change or
        // deactivation that commits while it was being checked must win.
        let mut verified = credentials.password_hash.clone();
        if needs_rehash {
            let stronger = self.ports.hasher.hash(password).await?;
            if self
                .ports
                .users
                .upgrade_password_hash(user.id, &verified, stronger.clone(), now)
                .await?
            {
                verified = stronger;
            }
        }
        if user.totp_enabled {
            // No session yet, and the failure count stays until the code
            // is right too (see `check_password`).
            let Some(challenge) = self.challenge_login(user.id, &verified, now).await? else {
                self.audit_login_failure(user.id, context, "password replaced meanwhile".into())
                    .await?;
                return Err(LoginError::InvalidCredentials);
            };
            return Err(LoginError::SecondFactorRequired(challenge));
        }
        let Some(pair) = self.start_session(user, &verified).await? else {
            self.audit_login_failure(user.id, context, "password replaced meanwhile".into())
                .await?;
            return Err(LoginError::InvalidCredentials);
        };
        self.audit(
            AuditEvent::LoginSucceeded,
            Some(user.id),
            None,
            context,
            None,
        )
        .await?;
        Ok(pair)
    }

    /// Rotates a refresh token. A token presented a second time revokes its
    /// whole session.
    ///
    /// # Errors
    /// [`RefreshError::Invalid`] or [`RefreshError::Reused`].
    pub async fn refresh(
        &self,
        presented: &str,
        context: &RequestContext,
    ) -> Result<TokenPair, RefreshError> {
        let now = self.now();
        let presented = self.ports.secrets.digest(presented);
        let successor = self.ports.secrets.generate();
        let rotation = self
            .ports
            .sessions
            .rotate_refresh_token(
                presented,
                successor.digest,
                now,
                now + self.policy.lifetimes.refresh,
            )
            .await?;
        match rotation {
            Rotation::Rotated { session, user } => {
                let Some(user) = self
                    .ports
                    .users
                    .user_by_id(user)
                    .await?
                    .filter(|u| u.is_active)
                else {
                    self.ports.sessions.revoke_session(session, now).await?;
                    return Err(RefreshError::Invalid);
                };
                Ok(self.token_pair(&user, session, &successor, now)?)
            }
            Rotation::Reused { session, user } => {
                self.ports.sessions.revoke_session(session, now).await?;
                self.audit(
                    AuditEvent::TokenReused,
                    Some(user),
                    None,
                    context,
                    Some(format!("session {session} revoked")),
                )
                .await?;
                Err(RefreshError::Reused)
            }
            Rotation::Invalid => Err(RefreshError::Invalid),
        }
    }

    /// Checks a bearer token: signature and claims, then the blacklist and
    /// that its session and user are still live (so revocation holds even
    /// when the blacklist is unreachable).
    ///
    /// # Errors
    /// [`AuthError::Rejected`] naming why it is refused.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let claims = self.ports.access.verify(bearer, self.now())?;
        // Both checks at once: the request waits for one round trip, not two.
        let (revoked, user) = futures_util::future::join(
            self.ports.revocations.is_revoked(claims.token),
            self.ports.sessions.active_session_user(claims.session),
        )
        .await;
        if let Ok(true) = revoked {
            return Err(TokenRejected::Revoked.into());
        }
        let user = user?
            .filter(|user| user.id == claims.user)
            .ok_or(TokenRejected::Revoked)?;
        Ok(Principal {
            user,
            session: claims.session,
            token: claims.token,
            expires_at: claims.expires_at,
        })
    }

    /// Ends the principal's session: the access token is blacklisted and the
    /// session (with its refresh tokens) revoked.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn logout(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        self.ports
            .sessions
            .revoke_session(principal.session, self.now())
            .await?;
        // The session revocation already refuses the token; the blacklist
        // only makes the refusal cheaper, so its failure is not fatal.
        let _ = self
            .ports
            .revocations
            .revoke(principal.token, principal.expires_at)
            .await;
        self.audit_after(
            AuditEvent::LoggedOut,
            Some(principal.user.id),
            None,
            context,
            None,
        )
        .await;
        Ok(())
    }

    /// Ends every session of the principal's account.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn logout_all(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        self.ports
            .sessions
            .revoke_user_sessions(principal.user.id, None, self.now())
            .await?;
        let _ = self
            .ports
            .revocations
            .revoke(principal.token, principal.expires_at)
            .await;
        self.audit_after(
            AuditEvent::LoggedOutEverywhere,
            Some(principal.user.id),
            None,
            context,
            None,
        )
        .await;
        Ok(())
    }
}
