//! `/auth/mfa*`: the second factor. Completing a login that answered
//! `mfa_required`, and an account's TOTP: its status, enrolment (secret and
//! `otpauth://` URI, then a first code that returns the recovery codes),
//! and turning it off.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, delete, get, post, web};
use pp_domain::auth::Password;
use pp_domain::auth::second_factor::SecondFactorProof;
use pp_domain::auth::service::{SecondFactorError, SecondFactorOff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{TokenResponse, tokens};
use crate::extract::{Authenticated, Context, Json};
use crate::middleware::{auth_limit, require_user};
use crate::problem::{ApiError, ProblemBody};
use crate::state::AppState;

/// `POST /auth/mfa`: the challenge and one code (exactly one of the two
/// kinds: a body with both matches neither and is 422).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CompleteLoginRequest {
    /// With a code from the authenticator app.
    Code(MfaWithCode),
    /// With a recovery code.
    RecoveryCode(MfaWithRecoveryCode),
}

/// The challenge and a code from the authenticator app.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaWithCode {
    /// The `challenge` of the login's `mfa_required` answer.
    challenge: String,
    /// The six digits the authenticator app shows now.
    #[schema(example = "123456")]
    code: String,
}

/// The challenge and one of the account's recovery codes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaWithRecoveryCode {
    /// The `challenge` of the login's `mfa_required` answer.
    challenge: String,
    /// A recovery code (case, spaces and dashes do not matter).
    #[schema(example = "7k3m-q9zd-x2ra-hf0c")]
    recovery_code: String,
}

/// Completes a login with its second factor.
#[utoipa::path(tag = "auth", request_body = CompleteLoginRequest,
    responses(
        (status = 200, description = "Tokens, as a login's; the refresh token is also set as a cookie", body = TokenResponse),
        (status = 401, description = "`invalid_challenge` (unknown, used or older than 5 minutes: log in again) or `invalid_code` (wrong or used already; counts towards the lockout, the challenge stays open)", body = ProblemBody),
        (status = 403, description = "`account_disabled`", body = ProblemBody),
        (status = 422, description = "`validation_failed`: not the challenge and exactly one of `code` and `recovery_code`", body = ProblemBody),
        (status = 423, description = "`account_locked`, with `Retry-After`", body = ProblemBody),
        (status = 429, description = "`rate_limited`", body = ProblemBody)))]
#[post("/auth/mfa", wrap = "from_fn(auth_limit)")]
pub async fn complete_login(
    state: web::Data<AppState>,
    Context(context): Context,
    Json(body): Json<CompleteLoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let (challenge, proof) = match body {
        CompleteLoginRequest::Code(MfaWithCode { challenge, code }) => {
            (challenge, SecondFactorProof::Code(code))
        }
        CompleteLoginRequest::RecoveryCode(MfaWithRecoveryCode {
            challenge,
            recovery_code,
        }) => (
            challenge,
            SecondFactorProof::RecoveryCode(Zeroizing::new(recovery_code)),
        ),
    };
    let pair = state
        .auth
        .complete_login(&challenge, &proof, &context)
        .await
        .map_err(|error| match error {
            // Here a wrong code is a failed login, as a wrong password is.
            SecondFactorError::InvalidCode => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_code",
                "the code is wrong or was used already",
            ),
            other => other.into(),
        })?;
    Ok(tokens(&pair))
}

/// Where the caller's second factor stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpStatusBody {
    /// Whether logins need a code.
    enabled: bool,
    /// Unused recovery codes.
    recovery_codes_left: u32,
}

/// The caller's second factor.
#[utoipa::path(tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Its status", body = TotpStatusBody)))]
#[get("/auth/mfa/totp", wrap = "from_fn(require_user)")]
pub async fn totp_status(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let status = state.auth.second_factor_status(&principal).await?;
    Ok(HttpResponse::Ok().json(TotpStatusBody {
        enabled: status.enabled,
        recovery_codes_left: status.recovery_codes_left,
    }))
}

/// `POST /auth/mfa/totp`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeginTotpRequest {
    /// The account's password.
    password: String,
}

/// A new secret for an authenticator app, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolmentBody {
    /// The secret in base32, to type in.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// `otpauth://totp/...`, to show as a QR code.
    otpauth_uri: String,
}

/// Starts turning the second factor on: a new secret (replacing one not
/// yet confirmed). Logins change only once a first code confirms it.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = BeginTotpRequest,
    responses(
        (status = 200, description = "The secret, shown this once", body = TotpEnrolmentBody),
        (status = 403, description = "`invalid_credentials`: the password is wrong (counts towards the lockout)", body = ProblemBody),
        (status = 409, description = "`mfa_already_enabled`, or `password_not_set` (an account made by a provider sign-in sets a password by a reset first)", body = ProblemBody),
        (status = 423, description = "`account_locked`, with `Retry-After`", body = ProblemBody)))]
#[post("/auth/mfa/totp", wrap = "from_fn(require_user)")]
pub async fn begin_totp(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
    Json(body): Json<BeginTotpRequest>,
) -> Result<HttpResponse, ApiError> {
    let password = Password::presented(&body.password);
    let shown = state
        .auth
        .begin_second_factor(&principal, &password, &context)
        .await?;
    Ok(HttpResponse::Ok().json(TotpEnrolmentBody {
        secret: shown.secret.to_string(),
        otpauth_uri: shown.uri.to_string(),
    }))
}

/// `POST /auth/mfa/totp/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTotpRequest {
    /// The six digits the authenticator app shows now.
    #[schema(example = "123456")]
    code: String,
}

/// The recovery codes, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesBody {
    /// Ten codes, each good for one login without the app.
    recovery_codes: Vec<String>,
}

/// Confirms the secret with a first code: the second factor is on.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = ConfirmTotpRequest,
    responses(
        (status = 200, description = "The recovery codes, shown this once", body = RecoveryCodesBody),
        (status = 403, description = "`invalid_code`", body = ProblemBody),
        (status = 409, description = "`mfa_already_enabled`, or `mfa_not_enabled` (no secret to confirm: start again)", body = ProblemBody)))]
#[post("/auth/mfa/totp/confirm", wrap = "from_fn(require_user)")]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
    Json(body): Json<ConfirmTotpRequest>,
) -> Result<HttpResponse, ApiError> {
    let codes = state
        .auth
        .confirm_second_factor(&principal, &body.code, &context)
        .await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesBody {
        recovery_codes: codes.iter().map(|code| code.to_string()).collect(),
    }))
}

/// `DELETE /auth/mfa/totp`: exactly one proof (a body with two matches
/// none and is 422).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DisableTotpRequest {
    /// The account's password.
    Password(TotpOffWithPassword),
    /// A current code.
    Code(TotpOffWithCode),
    /// A recovery code.
    RecoveryCode(TotpOffWithRecoveryCode),
}

/// Turning the factor off with the password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpOffWithPassword {
    /// The account's password.
    password: String,
}

/// Turning the factor off with a current code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpOffWithCode {
    /// The six digits the authenticator app shows now.
    #[schema(example = "123456")]
    code: String,
}

/// Turning the factor off with a recovery code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpOffWithRecoveryCode {
    /// A recovery code.
    recovery_code: String,
}

/// Turns the second factor off.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = DisableTotpRequest,
    responses(
        (status = 204, description = "Off; the recovery codes are gone"),
        (status = 403, description = "`invalid_credentials` or `invalid_code` (counts towards the lockout)", body = ProblemBody),
        (status = 409, description = "`mfa_not_enabled`", body = ProblemBody),
        (status = 422, description = "`validation_failed`: not exactly one of `password`, `code` and `recovery_code`", body = ProblemBody),
        (status = 423, description = "`account_locked`, with `Retry-After`", body = ProblemBody)))]
#[delete("/auth/mfa/totp", wrap = "from_fn(require_user)")]
pub async fn disable_totp(
    state: web::Data<AppState>,
    Authenticated(principal): Authenticated,
    Context(context): Context,
    Json(body): Json<DisableTotpRequest>,
) -> Result<HttpResponse, ApiError> {
    let off = match body {
        DisableTotpRequest::Password(TotpOffWithPassword { password }) => {
            SecondFactorOff::Password(Password::presented(&password))
        }
        DisableTotpRequest::Code(TotpOffWithCode { code }) => {
            SecondFactorOff::Proof(SecondFactorProof::Code(code))
        }
        DisableTotpRequest::RecoveryCode(TotpOffWithRecoveryCode { recovery_code }) => {
            SecondFactorOff::Proof(SecondFactorProof::RecoveryCode(Zeroizing::new(
                recovery_code,
            )))
        }
    };
    state
        .auth
        .disable_second_factor(&principal, off, &context)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
