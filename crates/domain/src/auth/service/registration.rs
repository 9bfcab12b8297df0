//! Registration and e-mail verification, and the single-use links both
//! mail (capped per account per hour).

use super::*;

impl AuthService {
    /// A new single-use link for `purpose` and the mail that carries it to
    /// the account `user` (at `email`, greeted as `name`).
    fn new_link(
        &self,
        user: UserId,
        email: &Email,
        name: &str,
        purpose: OneTimePurpose,
        context: &RequestContext,
    ) -> NewLink {
        let now = self.now();
        let token = self.ports.secrets.generate();
        let path = match purpose {
            OneTimePurpose::VerifyEmail => "verify-email",
            OneTimePurpose::ResetPassword => "reset-password",
        };
        let valid_for = self.policy.lifetimes.of(purpose);
        let mail = LinkMail {
            to: email.clone(),
            name: name.to_owned(),
            purpose,
            link: format!(
                "{base}/{path}?token={token}",
                base = self.policy.public_url,
                token = token.plain.as_str(),
            ),
            expires_at: now + valid_for,
        };
        NewLink {
            token: NewOneTimeToken {
                digest: token.digest,
                user,
                purpose,
                issued_at: now,
                expires_at: now + valid_for,
            },
            mail: NewOutboxMail::new(OutgoingMail::Link(mail), now).caused_by(context),
        }
    }

    /// Stores a new link for `user` and its mail (the outbox delivers it),
    /// unless the account had its share of mail this hour: then nothing,
    /// and the caller answers alike.
    pub(super) async fn issue_one_time(
        &self,
        user: &User,
        purpose: OneTimePurpose,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let link = self.new_link(user.id, &user.email, &user.display_name, purpose, context);
        let cap = IssueCap {
            at_most: self.policy.mails_per_account_per_hour,
            since: link.token.issued_at - Duration::hours(1),
        };
        self.ports.one_time.issue_one_time_token(link, cap).await?;
        Ok(())
    }

    /// Registers an account and e-mails a verification link.
    ///
    /// # Errors
    /// [`RegisterError::Invalid`] with every broken rule,
    /// [`RegisterError::EmailTaken`] when the address has an account.
    pub async fn register(
        &self,
        registration: Registration,
        context: &RequestContext,
    ) -> Result<User, RegisterError> {
        let mut errors = Collector::default();
        let email = errors.check("email", Email::parse(&registration.email));
        let name = match registration.display_name.as_deref() {
            Some(raw) => errors.check("display_name", DisplayName::parse(raw)),
            None => email.as_ref().map(DisplayName::from_email),
        };
        let password = self.new_password(
            "password",
            &registration.password,
            email
                .as_ref()
                .map_or(registration.email.as_str(), Email::as_str),
            name.as_ref().map_or("", DisplayName::as_str),
            &mut errors,
        );
        let (email, name, password) = errors.finish((|| Some((email?, name?, password?)))())?;

        let hash = self.ports.hasher.hash(&password).await?;
        let id = UserId::generate();
        let verification = self.new_link(
            id,
            &email,
            name.as_str(),
            OneTimePurpose::VerifyEmail,
            context,
        );
        let user = self
            .ports
            .users
            .insert_user(
                NewUser {
                    id,
                    email,
                    display_name: name.into_string(),
                    password_hash: hash,
                    role: Role::User,
                    email_verified: false,
                    created_at: self.now(),
                },
                Some(verification),
            )
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => RegisterError::EmailTaken,
                CreateUserError::Store(e) => RegisterError::Store(e),
            })?;
        self.audit_after(AuditEvent::Registered, Some(user.id), None, context, None)
            .await;
        Ok(user)
    }

    /// Creates an account without the web flow (the `admin create-user` command).
    ///
    /// # Errors
    /// As [`AuthService::register`].
    pub async fn create_user(
        &self,
        email: &str,
        password: Password,
        role: Role,
        verified: bool,
    ) -> Result<User, RegisterError> {
        let mut errors = Collector::default();
        let email = errors.check("email", Email::parse(email));
        let name = email.as_ref().map(DisplayName::from_email);
        let password = self.new_password(
            "password",
            &password,
            email.as_ref().map_or("", Email::as_str),
            name.as_ref().map_or("", DisplayName::as_str),
            &mut errors,
        );
        let (email, name, password) = errors.finish((|| Some((email?, name?, password?)))())?;
        let hash = self.ports.hasher.hash(&password).await?;
        self.ports
            .users
            .insert_user(
                NewUser {
                    id: UserId::generate(),
                    email,
                    display_name: name.into_string(),
                    password_hash: hash,
                    role,
                    email_verified: verified,
                    created_at: self.now(),
                },
                None,
            )
            .await
            .map_err(|e| match e {
                CreateUserError::EmailTaken => RegisterError::EmailTaken,
                CreateUserError::Store(e) => RegisterError::Store(e),
            })
    }

    /// Proves an address with the token from its verification e-mail.
    ///
    /// # Errors
    /// [`OneTimeError::InvalidToken`] for an unknown, used or expired token.
    pub async fn verify_email(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<User, OneTimeError> {
        let now = self.now();
        let digest = self.ports.secrets.digest(token);
        let user = self
            .ports
            .one_time
            .consume_one_time_token(digest, OneTimePurpose::VerifyEmail, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        let verified = self
            .ports
            .users
            .mark_email_verified(user, now)
            .await?
            .ok_or(OneTimeError::InvalidToken)?;
        self.audit_after(AuditEvent::EmailVerified, Some(user), None, context, None)
            .await;
        Ok(verified)
    }

    /// Sends a new verification link when the address has an unverified
    /// account; says nothing either way.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn resend_verification(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        match self.ports.users.user_by_email(&email).await? {
            Some(user) if user.is_active && !user.email_verified => {
                self.issue_one_time(&user, OneTimePurpose::VerifyEmail, context)
                    .await
            }
            _ => Ok(()),
        }
    }
}
