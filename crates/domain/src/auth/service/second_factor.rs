//! The second factor: enrolling (password, new secret, first code),
//! completing a challenged login, turning it off, and what admins need.

use zeroize::Zeroizing;

use super::*;
use crate::auth::second_factor::{
    CHALLENGE_LIFETIME, IssuedChallenge, NewChallenge, RECOVERY_CODES, SecondFactorProof,
    SecondFactorStatus, TotpEnrolment,
};

/// Why an admin route refuses an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    /// Not an admin.
    NotAdmin,
    /// An admin without a second factor where one is required.
    SecondFactorRequired,
}

impl AuthService {
    /// Whether `principal` may use admin routes: an admin, with a second
    /// factor on when the policy requires one.
    ///
    /// # Errors
    /// [`AdminRefusal`] naming why not.
    pub fn admin_access(&self, principal: &Principal) -> Result<(), AdminRefusal> {
        if !principal.is_admin() {
            Err(AdminRefusal::NotAdmin)
        } else if self.policy.require_admin_second_factor && !principal.user.totp_enabled {
            Err(AdminRefusal::SecondFactorRequired)
        } else {
            Ok(())
        }
    }

    /// Opens a challenge for a login of `user` whose password was right
    /// against `verified`; `None` when a reset, change or deactivation
    /// committed meanwhile.
    pub(super) async fn challenge_login(
        &self,
        user: UserId,
        verified: &PasswordHash,
        now: Timestamp,
    ) -> Result<Option<IssuedChallenge>, StoreError> {
        let token = self.ports.secrets.generate();
        let opened = self
            .ports
            .second_factors
            .open_challenge(NewChallenge {
                digest: token.digest,
                user,
                issued_at: now,
                expires_at: now + CHALLENGE_LIFETIME,
                verified: verified.clone(),
            })
            .await?;
        Ok(opened.then(|| IssuedChallenge {
            challenge: token.plain,
            expires_in: CHALLENGE_LIFETIME,
        }))
    }

    /// Completes a challenged login with a code or a recovery code: a
    /// session like a password login's. A wrong code counts toward the
    /// lockout and leaves the challenge open for another try.
    ///
    /// # Errors
    /// [`SecondFactorError`] naming why not.
    pub async fn complete_login(
        &self,
        challenge: &str,
        proof: &SecondFactorProof,
        context: &RequestContext,
    ) -> Result<TokenPair, SecondFactorError> {
        let now = self.now();
        if !self.ports.secrets.well_formed(challenge) {
            return Err(SecondFactorError::InvalidChallenge);
        }
        let digest = self.ports.secrets.digest(challenge);
        let user = self
            .ports
            .second_factors
            .challenge_user(digest, now)
            .await?
            .ok_or(SecondFactorError::InvalidChallenge)?;
        let credentials = self
            .ports
            .users
            .credentials_by_id(user)
            .await?
            .ok_or(SecondFactorError::InvalidChallenge)?;
        if let Some(retry_after) = credentials.failures.remaining_lock(now) {
            self.audit_login_failure(user, context, CheckPlace::SecondFactor.locked().into())
                .await?;
            return Err(SecondFactorError::Locked { retry_after });
        }
        if !self.proof_holds(user, proof, now).await? {
            return Err(self.refuse_proof(user, now, context).await?);
        }
        self.refuse_if_locked(user, now, context, "locked meanwhile")
            .await?;
        // Closed only by a right code: a typo keeps the challenge open.
        if !self
            .ports
            .second_factors
            .close_challenge(digest, now)
            .await?
        {
            return Err(SecondFactorError::InvalidChallenge);
        }
        if !credentials.user.is_active {
            return Err(SecondFactorError::AccountDisabled);
        }
        self.ports.users.clear_login_failures(user).await?;
        // A reset or change of the password closes the account's open
        // challenges in its transaction; one that commits between the
        // challenge's check and here makes the session start refuse.
        let Some(pair) = self
            .start_session(&credentials.user, &credentials.password_hash)
            .await?
        else {
            self.audit_login_failure(user, context, "password replaced meanwhile".into())
                .await?;
            return Err(SecondFactorError::InvalidChallenge);
        };
        let how = match proof {
            SecondFactorProof::Code(_) => "with an authenticator code",
            SecondFactorProof::RecoveryCode(_) => "with a recovery code",
        };
        self.audit(
            AuditEvent::LoginSucceeded,
            Some(user),
            None,
            context,
            Some(how.into()),
        )
        .await?;
        Ok(pair)
    }

    /// `Locked` (audited with `detail`) when `user` is locked now, as
    /// stored now. After a right code it is read again: a right code sent
    /// together with wrong ones that locked the account meets the lock, as
    /// a right password does, or a burst of guesses in parallel would all
    /// be judged before any was counted.
    async fn refuse_if_locked(
        &self,
        user: UserId,
        now: Timestamp,
        context: &RequestContext,
        detail: &str,
    ) -> Result<(), SecondFactorError> {
        let failures = self
            .ports
            .users
            .credentials_by_id(user)
            .await?
            .map(|credentials| credentials.failures)
            .unwrap_or_default();
        if let Some(retry_after) = failures.remaining_lock(now) {
            self.audit_login_failure(user, context, detail.into())
                .await?;
            return Err(SecondFactorError::Locked { retry_after });
        }
        Ok(())
    }

    /// Whether `proof` is right for `user` now, using it up if so.
    async fn proof_holds(
        &self,
        user: UserId,
        proof: &SecondFactorProof,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        match proof {
            SecondFactorProof::Code(code) => {
                let Some(credential) = self.ports.second_factors.totp(user).await? else {
                    return Ok(false);
                };
                match self.ports.codes.check(&credential.secret, code, now) {
                    Some(step) if credential.confirmed => {
                        self.ports.second_factors.use_totp_step(user, step).await
                    }
                    _ => Ok(false),
                }
            }
            SecondFactorProof::RecoveryCode(code) => {
                let digest = self.ports.codes.recovery_digest(code);
                self.ports
                    .second_factors
                    .use_recovery_code(user, digest, now)
                    .await
            }
        }
    }

    /// Counts a wrong code toward the lockout: the error to answer.
    async fn refuse_proof(
        &self,
        user: UserId,
        now: Timestamp,
        context: &RequestContext,
    ) -> Result<SecondFactorError, StoreError> {
        Ok(
            match self
                .count_wrong_attempt(user, now, context, CheckPlace::SecondFactor)
                .await?
            {
                PasswordCheck::Locked { retry_after } => SecondFactorError::Locked { retry_after },
                PasswordCheck::Right { .. } | PasswordCheck::Wrong => {
                    SecondFactorError::InvalidCode
                }
            },
        )
    }

    /// Checks `user`'s password for a change of their second factor (the
    /// same count and lock as a login).
    async fn prove_password(
        &self,
        user: UserId,
        password: &Password,
        context: &RequestContext,
    ) -> Result<(), SecondFactorError> {
        let credentials = self
            .ports
            .users
            .credentials_by_id(user)
            .await?
            .ok_or(SecondFactorError::WrongPassword)?;
        if !credentials.password_set {
            // Nothing to guess: the password is unknowable until a reset.
            return Err(SecondFactorError::PasswordNotSet);
        }
        match self
            .check_password(
                &credentials,
                password,
                self.now(),
                context,
                CheckPlace::SecondFactorSetup,
            )
            .await?
        {
            PasswordCheck::Right { .. } => Ok(()),
            PasswordCheck::Wrong => Err(SecondFactorError::WrongPassword),
            PasswordCheck::Locked { retry_after } => Err(SecondFactorError::Locked { retry_after }),
        }
    }

    /// Starts an enrolment: after the password, a new secret (replacing an
    /// unconfirmed one) to put in an authenticator app. Nothing changes
    /// for logins until [`confirm_second_factor`](Self::confirm_second_factor).
    ///
    /// # Errors
    /// [`SecondFactorError`]: the password, the lock, already on.
    pub async fn begin_second_factor(
        &self,
        principal: &Principal,
        password: &Password,
        context: &RequestContext,
    ) -> Result<TotpEnrolment, SecondFactorError> {
        let user = &principal.user;
        if user.totp_enabled {
            return Err(SecondFactorError::AlreadyEnabled);
        }
        self.prove_password(user.id, password, context).await?;
        let secret = self.ports.codes.new_secret();
        if !self
            .ports
            .second_factors
            .save_unconfirmed_totp(user.id, &secret, self.now())
            .await?
        {
            return Err(SecondFactorError::AlreadyEnabled);
        }
        Ok(self.ports.codes.enrolment(&secret, user.email.as_str())?)
    }

    /// Confirms an enrolment with a first code: the factor is on from now,
    /// and the recovery codes returned are shown this once.
    ///
    /// # Errors
    /// [`SecondFactorError`]: no enrolment, already on, a wrong code.
    pub async fn confirm_second_factor(
        &self,
        principal: &Principal,
        code: &str,
        context: &RequestContext,
    ) -> Result<Vec<Zeroizing<String>>, SecondFactorError> {
        let now = self.now();
        let user = principal.user.id;
        let credential = match self.ports.second_factors.totp(user).await? {
            Some(credential) if credential.confirmed => {
                return Err(SecondFactorError::AlreadyEnabled);
            }
            Some(credential) => credential,
            None => return Err(SecondFactorError::NotEnabled),
        };
        let step = self
            .ports
            .codes
            .check(&credential.secret, code, now)
            .ok_or(SecondFactorError::InvalidCode)?;
        let codes = self.ports.codes.recovery_codes(RECOVERY_CODES);
        let digests = codes
            .iter()
            .map(|code| self.ports.codes.recovery_digest(code))
            .collect();
        if !self
            .ports
            .second_factors
            .confirm_totp(user, step, digests, now)
            .await?
        {
            // Another request confirmed it (or a new enrolment replaced
            // the secret) meanwhile.
            return Err(SecondFactorError::AlreadyEnabled);
        }
        self.audit_after(
            AuditEvent::SecondFactorEnabled,
            Some(user),
            None,
            context,
            None,
        )
        .await;
        Ok(codes)
    }

    /// Turns the factor off, proven by a current code (or recovery code)
    /// or by the password. A wrong proof counts toward the lockout.
    ///
    /// # Errors
    /// [`SecondFactorError`]: not on, a wrong proof, the lock.
    pub async fn disable_second_factor(
        &self,
        principal: &Principal,
        proof: SecondFactorOff,
        context: &RequestContext,
    ) -> Result<(), SecondFactorError> {
        let now = self.now();
        let user = principal.user.id;
        if !principal.user.totp_enabled {
            return Err(SecondFactorError::NotEnabled);
        }
        match proof {
            SecondFactorOff::Password(password) => {
                self.prove_password(user, &password, context).await?;
            }
            SecondFactorOff::Proof(proof) => {
                self.refuse_if_locked(user, now, context, CheckPlace::SecondFactorSetup.locked())
                    .await?;
                if !self.proof_holds(user, &proof, now).await? {
                    return Err(self.refuse_proof(user, now, context).await?);
                }
                self.refuse_if_locked(user, now, context, "locked meanwhile")
                    .await?;
            }
        }
        if !self.ports.second_factors.remove_totp(user).await? {
            return Err(SecondFactorError::NotEnabled);
        }
        self.audit_after(
            AuditEvent::SecondFactorDisabled,
            Some(user),
            None,
            context,
            None,
        )
        .await;
        Ok(())
    }

    /// Whether `principal`'s factor is on, and its recovery codes left.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn second_factor_status(
        &self,
        principal: &Principal,
    ) -> Result<SecondFactorStatus, StoreError> {
        let enabled = principal.user.totp_enabled;
        let recovery_codes_left = if enabled {
            self.ports
                .second_factors
                .recovery_codes_left(principal.user.id)
                .await?
        } else {
            0
        };
        Ok(SecondFactorStatus {
            enabled,
            recovery_codes_left,
        })
    }
}

/// What proves a request to turn the second factor off.
#[derive(Debug)]
pub enum SecondFactorOff {
    /// The account's password.
    Password(Password),
    /// A current code or a recovery code.
    Proof(SecondFactorProof),
}
