//! Sign-in with OpenID Connect, once the provider's ID token was validated
//! (the adapter's work): which account an identity signs in to, the account
//! a first sign-in creates, explicit linking, and unlinking.

use super::*;
use crate::auth::identities::{
    LinkOutcome, LinkedIdentity, NewAccountOutcome, NewIdentity, OidcError, ProviderName,
    UnlinkError, UnlinkOutcome, VerifiedIdentity, vouched_email,
};

/// What a provider sign-in leads to.
#[derive(Debug)]
pub enum ProviderSignIn {
    /// A session, as a password login's.
    Session(TokenPair),
    /// The account's second factor completes it, with this challenge
    /// (`POST /auth/mfa`).
    SecondFactorRequired(crate::auth::second_factor::IssuedChallenge),
}

impl AuthService {
    /// Signs in with a provider's identity: to the account it is linked
    /// to, or, the first time, to a new verified account, when the provider
    /// verified the address and no account has it. Nothing is ever linked
    /// to an existing account by its address (`account_exists`): its owner
    /// signs in and links explicitly. Audited either way.
    ///
    /// # Errors
    /// [`OidcError`] naming why; the refusal is audited.
    pub async fn sign_in_with(
        &self,
        identity: &VerifiedIdentity,
        context: &RequestContext,
    ) -> Result<ProviderSignIn, OidcError> {
        let outcome = self.try_sign_in_with(identity, context).await;
        if let Err(refusal) = &outcome {
            let user = self
                .ports
                .identities
                .account_of(&identity.provider, &identity.subject)
                .await
                .ok()
                .flatten();
            self.audit_oidc_refusal(&identity.provider, refusal.code(), None, user, context)
                .await;
        }
        outcome
    }

    async fn try_sign_in_with(
        &self,
        identity: &VerifiedIdentity,
        context: &RequestContext,
    ) -> Result<ProviderSignIn, OidcError> {
        // Two attempts: a concurrent first sign-in of the same identity may
        // link it between the lookup and the creation.
        for _ in 0..2 {
            if let Some(user) = self
                .ports
                .identities
                .account_of(&identity.provider, &identity.subject)
                .await?
            {
                return self
                    .start_provider_session(user, identity, None, context)
                    .await;
            }
            let email = vouched_email(identity)?;
            if self
                .ports
                .users
                .credentials_by_email(&email)
                .await?
                .is_some()
            {
                return Err(OidcError::AccountExists);
            }
            let now = self.now();
            // An account made this way has no password anyone knows: the
            // hash of a random secret thrown away, until a reset sets one.
            let unknowable = self.ports.secrets.generate();
            let password_hash = self
                .ports
                .hasher
                .hash(&Password::presented(&unknowable.plain))
                .await?;
            let display_name = identity
                .name
                .as_deref()
                .and_then(|name| DisplayName::parse(name).ok())
                .unwrap_or_else(|| DisplayName::from_email(&email))
                .into_string();
            let user = NewUser {
                id: UserId::generate(),
                email,
                display_name,
                password_hash,
                role: Role::User,
                email_verified: true,
                created_at: now,
            };
            let link = NewIdentity::of(identity, user.id, now);
            match self
                .ports
                .identities
                .create_account_with_identity(user, link)
                .await?
            {
                NewAccountOutcome::Created(user) => {
                    return self
                        .start_provider_session(
                            user.id,
                            identity,
                            Some("account created".into()),
                            context,
                        )
                        .await;
                }
                NewAccountOutcome::EmailTaken => return Err(OidcError::AccountExists),
                NewAccountOutcome::IdentityInUse => {}
            }
        }
        Err(OidcError::IdentityInUse)
    }

    async fn start_provider_session(
        &self,
        user: UserId,
        identity: &VerifiedIdentity,
        detail: Option<String>,
        context: &RequestContext,
    ) -> Result<ProviderSignIn, OidcError> {
        // The session store starts a session against the stored hash (so a
        // password reset committing meanwhile wins); a provider sign-in
        // does not depend on the password, so it reads the current one,
        // and tries again if a reset slipped in between.
        for _ in 0..2 {
            let Some(credentials) = self.ports.users.credentials_by_id(user).await? else {
                return Err(OidcError::IdentityInUse);
            };
            if !credentials.user.is_active {
                return Err(OidcError::AccountDisabled);
            }
            if credentials.user.totp_enabled {
                // A provider is never a way around the account's second
                // factor: the login waits for its code, as a password
                // login does.
                let now = self.now();
                if let Some(challenge) = self
                    .challenge_login(user, &credentials.password_hash, now)
                    .await?
                {
                    // The provider's part is done; the code's is audited
                    // when it comes (`login_succeeded` or `login_failed`).
                    let detail = format!("{}; waiting for the second factor", identity.provider);
                    self.audit(
                        AuditEvent::OidcLogin,
                        Some(user),
                        None,
                        context,
                        Some(detail),
                    )
                    .await?;
                    return Ok(ProviderSignIn::SecondFactorRequired(challenge));
                }
                continue;
            }
            if let Some(pair) = self
                .start_session(&credentials.user, &credentials.password_hash)
                .await?
            {
                let detail = match detail {
                    Some(detail) => format!("{}; {detail}", identity.provider),
                    None => identity.provider.to_string(),
                };
                self.audit(
                    AuditEvent::OidcLogin,
                    Some(user),
                    None,
                    context,
                    Some(detail),
                )
                .await?;
                return Ok(ProviderSignIn::Session(pair));
            }
        }
        Err(OidcError::AccountDisabled)
    }

    /// Links `identity` to the account of the session that asked for the
    /// link (a link ticket's holder), if that session is still live and its
    /// account active: the provider's round trip takes minutes, and a
    /// logout or password reset meanwhile must win. Starts no session.
    /// Audited either way.
    ///
    /// # Errors
    /// [`OidcError::InvalidTicket`] when the session ended or the account
    /// was deactivated, [`OidcError::IdentityInUse`] when another account
    /// has the identity, [`OidcError::ProviderAlreadyLinked`] when the
    /// account has another identity of that provider.
    pub async fn link_identity(
        &self,
        user: UserId,
        session: SessionId,
        identity: &VerifiedIdentity,
        context: &RequestContext,
    ) -> Result<(), OidcError> {
        let outcome = self.try_link(user, session, identity, context).await;
        if let Err(refusal) = &outcome {
            self.audit_oidc_refusal(
                &identity.provider,
                refusal.code(),
                Some("linking"),
                Some(user),
                context,
            )
            .await;
        }
        outcome
    }

    async fn try_link(
        &self,
        user: UserId,
        session: SessionId,
        identity: &VerifiedIdentity,
        context: &RequestContext,
    ) -> Result<(), OidcError> {
        let live = self
            .ports
            .sessions
            .active_session_user(session)
            .await?
            .is_some_and(|holder| holder.id == user);
        if !live {
            return Err(OidcError::InvalidTicket);
        }
        let link = NewIdentity::of(identity, user, self.now());
        match self.ports.identities.link_identity(link).await? {
            LinkOutcome::Linked | LinkOutcome::AlreadyLinked => {
                // The link stands whatever becomes of its audit entry.
                self.audit_after(
                    AuditEvent::OidcLinked,
                    Some(user),
                    None,
                    context,
                    Some(identity.provider.to_string()),
                )
                .await;
                Ok(())
            }
            LinkOutcome::InUse => Err(OidcError::IdentityInUse),
            LinkOutcome::ProviderTaken => Err(OidcError::ProviderAlreadyLinked),
        }
    }

    /// Audits a refused provider sign-in or link: the provider, the code
    /// the callback redirects with (`invalid_state`, `invalid_token`,
    /// `provider_error`, or an [`OidcError`]'s), why in more words when
    /// known (a token check's failure, say), and the account when known.
    pub async fn audit_oidc_refusal(
        &self,
        provider: &ProviderName,
        code: &str,
        reason: Option<&str>,
        user: Option<UserId>,
        context: &RequestContext,
    ) {
        let mut detail = format!("{provider}: {code}");
        if let Some(reason) = reason {
            detail.push_str(" (");
            // Bounded: a provider's error text is not ours to store whole.
            detail.extend(reason.chars().take(200));
            detail.push(')');
        }
        self.audit_after(
            AuditEvent::OidcLoginFailed,
            user,
            None,
            context,
            Some(detail),
        )
        .await;
    }

    /// The identities linked to the signed-in account.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn identities(
        &self,
        principal: &Principal,
    ) -> Result<Vec<LinkedIdentity>, StoreError> {
        self.ports.identities.identities_of(principal.user.id).await
    }

    /// Unlinks the signed-in account's identity of `provider`, unless it is
    /// the account's last way to sign in. Audited.
    ///
    /// # Errors
    /// [`UnlinkError`] naming why.
    pub async fn unlink_identity(
        &self,
        principal: &Principal,
        provider: &ProviderName,
        context: &RequestContext,
    ) -> Result<(), UnlinkError> {
        let user = principal.user.id;
        match self
            .ports
            .identities
            .unlink_identity(user, provider)
            .await?
        {
            UnlinkOutcome::Unlinked => {
                self.audit_after(
                    AuditEvent::OidcUnlinked,
                    Some(user),
                    None,
                    context,
                    Some(provider.to_string()),
                )
                .await;
                Ok(())
            }
            UnlinkOutcome::NotLinked => Err(UnlinkError::NotLinked),
            UnlinkOutcome::LastMethod => Err(UnlinkError::LastMethod),
        }
    }
}
