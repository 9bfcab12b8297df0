//! Passwords: checking one (with the lockout), forgetting, resetting and
//! changing it.

use super::*;

impl AuthService {
    /// Checks `password` against `credentials`, lockout included: a locked
    /// account is refused without checking; a wrong password is counted,
    /// together with the lock it reaches, unless concurrent failures locked
    /// the account meanwhile; a right one then re-reads the lock (a guess
    /// that happens to be right after the lock tells nothing) and clears the
    /// count. Every refusal is audited, with `place` in its detail.
    pub(super) async fn check_password(
        &self,
        credentials: &Credentials,
        password: &Password,
        now: Timestamp,
        context: &RequestContext,
        place: CheckPlace,
    ) -> Result<PasswordCheck, StoreError> {
        let user = credentials.user.id;
        let locked = |retry_after| PasswordCheck::Locked { retry_after };
        if let Some(retry_after) = credentials.failures.remaining_lock(now) {
            self.audit_login_failure(user, context, place.locked().into())
                .await?;
            return Ok(locked(retry_after));
        }
        let verification = self
            .ports
            .hasher
            .verify(password, Some(credentials.password_hash.clone()))
            .await?;
        let Verification::Valid { needs_rehash } = verification else {
            return self.count_wrong_attempt(user, now, context, place).await;
        };
        let failures = self
            .ports
            .users
            .credentials_by_id(user)
            .await?
            .map(|c| c.failures)
            .unwrap_or_default();
        if let Some(retry_after) = failures.remaining_lock(now) {
            self.audit_login_failure(user, context, "locked meanwhile".into())
                .await?;
            return Ok(locked(retry_after));
        }
        // An account with a second factor keeps its count until the code
        // is right too: otherwise the password alone would reset the count
        // of guessed codes.
        let second_factor_follows =
            matches!(place, CheckPlace::Login) && credentials.user.totp_enabled;
        if failures != LoginFailures::default() && !second_factor_follows {
            self.ports.users.clear_login_failures(user).await?;
        }
        Ok(PasswordCheck::Right { needs_rehash })
    }

    /// Counts a wrong password or code of `user` toward the lockout, and
    /// audits it (and the lock it reaches) with `place` in the detail;
    /// `Locked` when concurrent failures locked the account meanwhile.
    pub(super) async fn count_wrong_attempt(
        &self,
        user: UserId,
        now: Timestamp,
        context: &RequestContext,
        place: CheckPlace,
    ) -> Result<PasswordCheck, StoreError> {
        match self
            .ports
            .users
            .record_wrong_password(user, now, self.policy.lockout)
            .await?
        {
            FailedAttempt::AlreadyLocked { retry_after } => {
                self.audit_login_failure(user, context, "locked meanwhile".into())
                    .await?;
                Ok(PasswordCheck::Locked { retry_after })
            }
            FailedAttempt::Counted {
                failures,
                locks_for,
            } => {
                self.audit_login_failure(user, context, place.wrong().into())
                    .await?;
                if let Some(lock) = locks_for {
                    let detail =
                        format!("{failures} failures, locked for {} min", lock.num_minutes());
                    self.audit(
                        AuditEvent::AccountLocked,
                        Some(user),
                        None,
                        context,
                        Some(detail),
                    )
                    .await?;
                }
                Ok(PasswordCheck::Wrong)
            }
        }
    }

    /// E-mails a reset link when the address has an active account; says
    /// nothing either way. A locked account may reset its password.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn forgot_password(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        match self.ports.users.user_by_email(&email).await? {
            Some(user) if user.is_active => {
                self.issue_one_time(&user, OneTimePurpose::ResetPassword, context)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Sets a new password with a reset link's token, unlocks the account and
    /// revokes every session and every other reset link. The token is used
    /// only when the password is acceptable, so a refused password does not
    /// waste the link.
    ///
    /// # Errors
    /// [`OneTimeError::InvalidToken`] or [`OneTimeError::Invalid`].
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &Password,
        context: &RequestContext,
    ) -> Result<(), OneTimeError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        let purpose = OneTimePurpose::ResetPassword;
        let owner = self
            .ports
            .one_time
            .peek_one_time_token(digest, purpose, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        let user = self
            .ports
            .users
            .user_by_id(owner)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        let hash = self
            .replacement_hash::<OneTimeError>(new_password, &user)
            .await?;
        // The link is spent with the replacement: of two resets at once,
        // with this link or another of the account's, one wins.
        self.ports
            .users
            .replace_password(PasswordReplacement {
                user: owner,
                hash,
                at: now,
                keep_session: None,
                link: Some(digest),
            })
            .await
            .map_err(|err| match err {
                ReplacePasswordError::LinkSpent => OneTimeError::InvalidToken,
                ReplacePasswordError::Store(err) => OneTimeError::Store(err),
            })?;
        self.audit_after(AuditEvent::PasswordReset, Some(owner), None, context, None)
            .await;
        Ok(())
    }

    /// Changes the principal's password: the current one must be right. Other
    /// sessions and unused reset links are revoked; this one continues with
    /// new tokens.
    ///
    /// # Errors
    /// [`ChangePasswordError::WrongPassword`] or [`ChangePasswordError::Invalid`].
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &Password,
        new_password: &Password,
        context: &RequestContext,
    ) -> Result<TokenPair, ChangePasswordError> {
        let now = self.now();
        let user = &principal.user;
        // A new password of the wrong length is refused first: the request
        // is wrong whatever the current password, and is not a guess. The
        // costlier strength check waits until the caller proved the
        // current password.
        let mut errors = Collector::default();
        errors.check(
            "new_password",
            self.policy.passwords.check_length(new_password.expose()),
        );
        errors.finish(Some(()))?;
        let credentials = self
            .ports
            .users
            .credentials_by_id(user.id)
            .await?
            .ok_or(ChangePasswordError::WrongPassword)?;
        // Guessing the password here is guessing it at login: the same
        // count, the same lock.
        match self
            .check_password(
                &credentials,
                current,
                now,
                context,
                CheckPlace::PasswordChange,
            )
            .await?
        {
            PasswordCheck::Right { .. } => {}
            PasswordCheck::Wrong => return Err(ChangePasswordError::WrongPassword),
            PasswordCheck::Locked { retry_after } => {
                return Err(ChangePasswordError::Locked { retry_after });
            }
        }
        let hash = self
            .replacement_hash::<ChangePasswordError>(new_password, user)
            .await?;
        // A reset link mailed before would undo the change: it dies too.
        self.ports
            .users
            .replace_password(PasswordReplacement {
                user: user.id,
                hash,
                at: now,
                keep_session: Some(principal.session),
                link: None,
            })
            .await
            .map_err(|err| match err {
                ReplacePasswordError::Store(err) => err,
                ReplacePasswordError::LinkSpent => {
                    StoreError::Integrity("a change spent a reset link it was not given".into())
                }
            })?;
        let (token, record) = self.new_refresh(principal.session, user.id, now);
        self.ports
            .sessions
            .replace_refresh_tokens(record, now)
            .await?;
        self.audit_after(
            AuditEvent::PasswordChanged,
            Some(user.id),
            None,
            context,
            None,
        )
        .await;
        Ok(self.token_pair(user, principal.session, &token, now)?)
    }

    /// The hash of `new_password` as `user`'s next password, once it
    /// passes every rule (a reset and a change judge it alike).
    async fn replacement_hash<E>(
        &self,
        new_password: &Password,
        user: &User,
    ) -> Result<PasswordHash, E>
    where
        E: From<ValidationErrors> + From<StoreError>,
    {
        let mut errors = Collector::default();
        let password = self.new_password(
            "new_password",
            new_password,
            user.email.as_str(),
            &user.display_name,
            &mut errors,
        );
        let password = errors.finish(password)?;
        Ok(self.ports.hasher.hash(&password).await?)
    }
}
