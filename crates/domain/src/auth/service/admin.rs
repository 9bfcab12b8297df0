//! Administration: one's own profile, and accounts for admins.

use super::*;

impl AuthService {
    /// Changes what the principal may change of their own account: the
    /// display name and e-mail notices. No change at all answers the
    /// account as it is.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] when the account vanished meanwhile.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        display_name: Option<DisplayName>,
        notify_email: Option<bool>,
    ) -> Result<User, AdminError> {
        if display_name.is_none() && notify_email.is_none() {
            return self.user(principal.user.id).await;
        }
        let changes = UserChanges {
            display_name,
            notify_email,
            ..UserChanges::default()
        };
        self.ports
            .users
            .update_user(principal.user.id, changes, self.now())
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// One page of the audit trail, newest first, and where the next page
    /// starts.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn audit_trail(
        &self,
        filter: AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<(Vec<AuditRecord>, Option<AuditCursor>), StoreError> {
        let mut entries = self
            .ports
            .audit
            .audit_trail(filter, after, limit + 1)
            .await?;
        let has_more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next = entries.last().filter(|_| has_more).map(|last| AuditCursor {
            at: last.at,
            id: last.id,
        });
        Ok((entries, next))
    }

    /// One page of accounts, newest first, and where the next page starts;
    /// only those whose address contains `email` (any case) when given.
    ///
    /// # Errors
    /// Only when the store fails.
    pub async fn list_users(
        &self,
        email: Option<&str>,
        after: Option<UserCursor>,
        limit: u32,
    ) -> Result<(Vec<User>, Option<UserCursor>), StoreError> {
        // Addresses are stored in lower case.
        let email = email
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_lowercase);
        let mut users = self.ports.users.list_users(email, after, limit + 1).await?;
        let has_more = users.len() > limit as usize;
        users.truncate(limit as usize);
        let next = users.last().filter(|_| has_more).map(|last| UserCursor {
            created_at: last.created_at,
            id: last.id,
        });
        Ok((users, next))
    }

    /// An account by id.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] for an unknown id.
    pub async fn user(&self, id: UserId) -> Result<User, AdminError> {
        self.ports
            .users
            .user_by_id(id)
            .await?
            .ok_or(AdminError::NotFound)
    }

    /// An admin changes an account's role or activation. Deactivating revokes
    /// every session at once; each change is audited.
    ///
    /// # Errors
    /// [`AdminError::NotFound`] for an unknown id.
    pub async fn administer_user(
        &self,
        admin: &Principal,
        id: UserId,
        role: Option<Role>,
        is_active: Option<bool>,
        context: &RequestContext,
    ) -> Result<User, AdminError> {
        let now = self.now();
        let before = self.user(id).await?;
        let changes = UserChanges {
            role,
            is_active,
            ..UserChanges::default()
        };
        let after = self
            .ports
            .users
            .update_user(id, changes, now)
            .await?
            .ok_or(AdminError::NotFound)?;
        let actor = Some(admin.user.id);
        if before.role != after.role {
            let detail = format!("{} -> {}", before.role, after.role);
            self.audit_after(
                AuditEvent::RoleChanged,
                Some(id),
                actor,
                context,
                Some(detail),
            )
            .await;
        }
        // Whatever `before` said: another admin may have reactivated the
        // account since, and sessions started meanwhile must end too.
        if is_active == Some(false) {
            self.ports
                .sessions
                .revoke_user_sessions(id, None, now)
                .await?;
        }
        if before.is_active != after.is_active {
            let detail = if after.is_active {
                "activated"
            } else {
                "deactivated"
            };
            self.audit_after(
                AuditEvent::ActivationChanged,
                Some(id),
                actor,
                context,
                Some(detail.into()),
            )
            .await;
        }
        Ok(after)
    }
}
