//! Every error the domain names, as the API answers it: each domain error's
//! status and `error_code` is in this file (the problem body itself is in
//! [`crate::problem`]; what the HTTP layer refuses on its own — a malformed
//! body, a bad cursor, a rate limit, too many streams — is answered where it
//! is judged: `extract.rs`, `cursor.rs`, `middleware.rs`, `streams.rs`).
//! Handlers return their domain errors with `?`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use pp_domain::BidRejection;
use pp_domain::auth::TokenRejected;
use pp_domain::auth::service::{
    AdminError, AuthError, ChangePasswordError, LoginError, OneTimeError, RefreshError,
    RegisterError, SecondFactorError,
};
use pp_domain::engine::{CancelRejection, EditRejection, PoisonProblem};
use pp_domain::photos::{AddPhotoError, ChangePhotosError, PhotoRejection};
use pp_domain::ports::{CancelItemError, EditItemError, PlaceBidError, StoreError};
use pp_domain::service::{EditError, ListItemError, RevealError};
use pp_domain::validation::ValidationErrors;

use crate::problem::ApiError;

/// 404 `item_not_found`.
#[must_use]
pub fn item_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "item_not_found", "no such item")
}

/// 404 `not_found` for an account id nobody has.
#[must_use]
pub fn user_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such user")
}

/// 404 `not_found` for a notification the caller does not have.
#[must_use]
pub fn notification_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such notification")
}

/// 404 `bid_not_found`: the item exists, the caller has not bid on it.
#[must_use]
pub fn bid_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "bid_not_found",
        "you have not bid on this item",
    )
}

/// 401 with a `WWW-Authenticate` challenge.
fn unauthorized(code: &'static str, detail: &str, challenge: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

/// 401 `unauthorized`: no bearer token at all.
#[must_use]
pub fn no_token() -> ApiError {
    unauthorized(
        "unauthorized",
        "send an access token as Authorization: Bearer …",
        "Bearer",
    )
}

/// 403 `forbidden`: signed in, but not an admin.
#[must_use]
pub fn admins_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this needs an admin account",
    )
}

/// 401 `invalid_ticket` for a WebSocket ticket that is malformed, unknown,
/// used or expired.
#[must_use]
pub fn invalid_ticket() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_ticket",
        "the ticket is unknown, used or expired; get a new one from POST /api/v1/ws-ticket",
    )
}

/// 423 `account_locked` with `Retry-After` in whole seconds, rounded up so
/// that a client waiting that long finds the lock gone (at least one).
fn account_locked(retry_after: chrono::Duration) -> ApiError {
    let seconds = retry_after
        .to_std()
        .map_or(1, crate::middleware::whole_seconds)
        .max(1);
    ApiError::new(
        StatusCode::LOCKED,
        "account_locked",
        format!("too many wrong passwords; try again in {seconds} s or reset the password"),
    )
    .with_header(header::RETRY_AFTER, seconds.to_string())
}

/// 404 `not_found` (no such identity linked), 409 `last_sign_in_method`.
impl From<pp_domain::auth::identities::UnlinkError> for ApiError {
    fn from(err: pp_domain::auth::identities::UnlinkError) -> Self {
        use pp_domain::auth::identities::UnlinkError;
        match err {
            UnlinkError::NotLinked => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no identity of this provider is linked to your account",
            ),
            UnlinkError::LastMethod => ApiError::new(
                StatusCode::CONFLICT,
                "last_sign_in_method",
                "it is your only way to sign in: set a password (reset it by e-mail) or link another provider first",
            ),
            UnlinkError::Store(err) => err.into(),
        }
    }
}

/// 503 (busy or unreachable, with `Retry-After`) or 500 (logged, opaque).
impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Busy => ApiError::unavailable(),
            other => ApiError::internal(&other),
        }
    }
}

/// 422 `validation_failed`, naming each field.
impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::validation(&errors)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Rejected(reason) => {
                tracing::debug!(%reason, "bearer token refused");
                let detail = match reason {
                    TokenRejected::Expired => "the access token has expired; refresh it",
                    _ => "the access token is invalid or revoked",
                };
                unauthorized("invalid_token", detail, "Bearer error=\"invalid_token\"")
            }
            AuthError::Store(error) => error.into(),
        }
    }
}

impl From<RegisterError> for ApiError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::Invalid(errors) => errors.into(),
            RegisterError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this e-mail address exists",
            ),
            RegisterError::Store(error) => error.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the e-mail address or the password is wrong",
            ),
            LoginError::Locked { retry_after } => account_locked(retry_after),
            LoginError::EmailNotVerified => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "verify your e-mail address first; the link was mailed to you",
            ),
            LoginError::AccountDisabled => account_disabled(),
            LoginError::SecondFactorRequired(issued) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_required",
                "the password is right; enter the code from your authenticator app",
            )
            .with_extension("challenge", issued.challenge.as_str())
            .with_extension("expires_in", issued.expires_in.num_seconds()),
            LoginError::Store(error) => error.into(),
        }
    }
}

fn account_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "account_disabled",
        "this account has been deactivated",
    )
}

impl From<SecondFactorError> for ApiError {
    fn from(error: SecondFactorError) -> Self {
        match error {
            SecondFactorError::InvalidChallenge => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_challenge",
                "the login is unknown, finished or more than 5 minutes old; log in again",
            ),
            SecondFactorError::InvalidCode => ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_code",
                "the code is wrong or was used already",
            ),
            SecondFactorError::WrongPassword => ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_credentials",
                "the password is wrong",
            ),
            SecondFactorError::PasswordNotSet => ApiError::new(
                StatusCode::CONFLICT,
                "password_not_set",
                "this account has no password yet (it was made by a sign-in with a provider): set one with \"Forgot your password?\" first",
            ),
            SecondFactorError::Locked { retry_after } => account_locked(retry_after),
            SecondFactorError::AlreadyEnabled => ApiError::new(
                StatusCode::CONFLICT,
                "mfa_already_enabled",
                "the second factor is already on",
            ),
            SecondFactorError::NotEnabled => ApiError::new(
                StatusCode::CONFLICT,
                "mfa_not_enabled",
                "the second factor is not on (to turn it on, start with your password again)",
            ),
            SecondFactorError::AccountDisabled => account_disabled(),
            SecondFactorError::Store(error) => error.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(error: RefreshError) -> Self {
        match error {
            RefreshError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the refresh token is invalid, expired or revoked; log in again",
            ),
            RefreshError::Reused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_reused",
                "this refresh token was already used; every session descended from its login was ended",
            ),
            RefreshError::Store(error) => error.into(),
        }
    }
}

impl From<OneTimeError> for ApiError {
    fn from(error: OneTimeError) -> Self {
        match error {
            OneTimeError::InvalidToken => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "the link is invalid, used or expired; ask for a new one",
            ),
            OneTimeError::Invalid(errors) => errors.into(),
            OneTimeError::Store(error) => error.into(),
        }
    }
}

impl From<ChangePasswordError> for ApiError {
    fn from(error: ChangePasswordError) -> Self {
        match error {
            ChangePasswordError::WrongPassword => ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_credentials",
                "the current password is wrong",
            ),
            ChangePasswordError::Locked { retry_after } => account_locked(retry_after),
            ChangePasswordError::Invalid(errors) => errors.into(),
            ChangePasswordError::Store(error) => error.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound => user_not_found(),
            AdminError::Store(error) => error.into(),
        }
    }
}

impl From<ListItemError> for ApiError {
    fn from(error: ListItemError) -> Self {
        match error {
            ListItemError::Invalid(errors) => errors.into(),
            ListItemError::Store(error) => error.into(),
        }
    }
}

/// docs/spec/api.md's bid errors; which applies first is the domain's order.
impl From<PlaceBidError> for ApiError {
    fn from(error: PlaceBidError) -> Self {
        match error {
            PlaceBidError::ItemNotFound => item_not_found(),
            PlaceBidError::BidderNotFound => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this account cannot bid",
            ),
            PlaceBidError::Rejected(rejection) => rejection.into(),
            PlaceBidError::Store(error) => error.into(),
        }
    }
}

impl From<BidRejection> for ApiError {
    fn from(rejection: BidRejection) -> Self {
        match rejection {
            BidRejection::AuctionClosed => auction_closed("the auction is closed"),
            BidRejection::OwnItem => ApiError::new(
                StatusCode::FORBIDDEN,
                "own_item",
                "you may not bid on an item you listed",
            ),
            BidRejection::EmailNotVerified => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "verify your e-mail address before bidding",
            ),
            BidRejection::AlreadyPlaced => ApiError::new(
                StatusCode::CONFLICT,
                "bid_already_placed",
                "you have already bid on this item; bids cannot be changed",
            ),
            BidRejection::InvalidPoison(problem) => {
                let field = match problem {
                    PoisonProblem::BudgetBelowAmount => "poison.budget",
                    PoisonProblem::StepBelowIncrement { .. } => "poison.step",
                };
                ApiError::invalid_fields_with_code(
                    "invalid_poison",
                    "the poison breaks a rule",
                    vec![(field.to_owned(), problem.to_string())],
                )
            }
            BidRejection::TooLow { minimum_next_bid } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bid_too_low",
                format!("the bid must be at least {minimum_next_bid}"),
            )
            .with_extension("minimum_next_bid", minimum_next_bid),
        }
    }
}

fn auction_closed(detail: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "auction_closed", detail)
}

impl From<CancelItemError> for ApiError {
    fn from(error: CancelItemError) -> Self {
        match error {
            CancelItemError::ItemNotFound => item_not_found(),
            CancelItemError::Rejected(CancelRejection::HasBids) => ApiError::new(
                StatusCode::CONFLICT,
                "item_has_bids",
                "an item with bids cannot be cancelled",
            ),
            CancelItemError::Rejected(CancelRejection::NotOpen) => {
                auction_closed("the auction is already over")
            }
            CancelItemError::Store(error) => error.into(),
        }
    }
}

impl From<EditError> for ApiError {
    fn from(error: EditError) -> Self {
        match error {
            EditError::Invalid(errors) => errors.into(),
            EditError::Item(EditItemError::ItemNotFound) => item_not_found(),
            EditError::Item(EditItemError::Rejected(EditRejection::HasBids)) => ApiError::new(
                StatusCode::CONFLICT,
                "item_has_bids",
                "an item with bids cannot be edited",
            ),
            EditError::Item(EditItemError::Rejected(EditRejection::NotOpen)) => {
                auction_closed("the auction is already over")
            }
            EditError::Item(EditItemError::Rejected(EditRejection::CloseEarlier)) => {
                ApiError::invalid_field("close_at", EditRejection::CloseEarlier.to_string())
            }
            EditError::Item(EditItemError::Store(error)) => error.into(),
        }
    }
}

/// 404 `photo_not_found`.
#[must_use]
pub fn photo_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "photo_not_found", "no such photo")
}

impl From<PhotoRejection> for ApiError {
    fn from(rejection: PhotoRejection) -> Self {
        match rejection {
            PhotoRejection::TooManyPhotos => ApiError::new(
                StatusCode::CONFLICT,
                "too_many_photos",
                rejection.to_string(),
            ),
            PhotoRejection::AuctionClosed => auction_closed("the auction is already over"),
            PhotoRejection::ItemHasBids => ApiError::new(
                StatusCode::CONFLICT,
                "item_has_bids",
                "the photos of an item with bids stay",
            ),
        }
    }
}

impl From<AddPhotoError> for ApiError {
    fn from(error: AddPhotoError) -> Self {
        match error {
            AddPhotoError::ItemNotFound => item_not_found(),
            AddPhotoError::Rejected(rejection) => rejection.into(),
            AddPhotoError::Invalid(invalid) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                invalid.to_string(),
            ),
            AddPhotoError::Store(error) => error.into(),
        }
    }
}

impl From<ChangePhotosError> for ApiError {
    fn from(error: ChangePhotosError) -> Self {
        match error {
            ChangePhotosError::ItemNotFound => item_not_found(),
            ChangePhotosError::PhotoNotFound => photo_not_found(),
            ChangePhotosError::Rejected(rejection) => rejection.into(),
            ChangePhotosError::NotTheItemsPhotos(wrong) => {
                ApiError::invalid_field("ids", wrong.to_string())
            }
            ChangePhotosError::Store(error) => error.into(),
        }
    }
}

impl From<RevealError> for ApiError {
    fn from(error: RevealError) -> Self {
        match error {
            RevealError::ItemNotFound => item_not_found(),
            RevealError::Sealed => ApiError::new(
                StatusCode::FORBIDDEN,
                "bids_sealed",
                "bids stay sealed until the auction closes",
            ),
            RevealError::Store(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use pp_domain::Money;

    use super::*;

    /// A status and its `error_code`.
    type Answer = (u16, &'static str);

    fn answer(error: impl Into<ApiError>) -> Answer {
        let error = error.into();
        (error.error_response().status().as_u16(), error.code())
    }

    #[test]
    fn each_domain_error_has_its_status_and_code() {
        let no = || chrono::Duration::seconds(30);
        let cases: Vec<(Answer, Answer)> = vec![
            (answer(StoreError::Busy), (503, "service_unavailable")),
            (
                answer(StoreError::Integrity("x".into())),
                (500, "internal_error"),
            ),
            (answer(RegisterError::EmailTaken), (409, "email_taken")),
            (
                answer(LoginError::InvalidCredentials),
                (401, "invalid_credentials"),
            ),
            (
                answer(LoginError::Locked { retry_after: no() }),
                (423, "account_locked"),
            ),
            (
                answer(LoginError::EmailNotVerified),
                (403, "email_not_verified"),
            ),
            (
                answer(LoginError::AccountDisabled),
                (403, "account_disabled"),
            ),
            (answer(RefreshError::Invalid), (401, "invalid_token")),
            (answer(RefreshError::Reused), (401, "token_reused")),
            (answer(OneTimeError::InvalidToken), (400, "invalid_token")),
            (
                answer(ChangePasswordError::WrongPassword),
                (403, "invalid_credentials"),
            ),
            (
                answer(ChangePasswordError::Locked { retry_after: no() }),
                (423, "account_locked"),
            ),
            (answer(AdminError::NotFound), (404, "not_found")),
            (
                answer(LoginError::SecondFactorRequired(
                    pp_domain::auth::second_factor::IssuedChallenge {
                        challenge: "c".to_owned().into(),
                        expires_in: chrono::Duration::minutes(5),
                    },
                )),
                (401, "mfa_required"),
            ),
            (
                answer(SecondFactorError::InvalidChallenge),
                (401, "invalid_challenge"),
            ),
            (
                answer(SecondFactorError::InvalidCode),
                (403, "invalid_code"),
            ),
            (
                answer(SecondFactorError::WrongPassword),
                (403, "invalid_credentials"),
            ),
            (
                answer(SecondFactorError::PasswordNotSet),
                (409, "password_not_set"),
            ),
            (
                answer(SecondFactorError::Locked { retry_after: no() }),
                (423, "account_locked"),
            ),
            (
                answer(SecondFactorError::AlreadyEnabled),
                (409, "mfa_already_enabled"),
            ),
            (
                answer(SecondFactorError::NotEnabled),
                (409, "mfa_not_enabled"),
            ),
            (
                answer(SecondFactorError::AccountDisabled),
                (403, "account_disabled"),
            ),
            (
                answer(AuthError::Rejected(TokenRejected::Expired)),
                (401, "invalid_token"),
            ),
            (answer(PlaceBidError::ItemNotFound), (404, "item_not_found")),
            (answer(PlaceBidError::BidderNotFound), (403, "forbidden")),
            (answer(BidRejection::AuctionClosed), (409, "auction_closed")),
            (answer(BidRejection::OwnItem), (403, "own_item")),
            (
                answer(BidRejection::EmailNotVerified),
                (403, "email_not_verified"),
            ),
            (
                answer(BidRejection::AlreadyPlaced),
                (409, "bid_already_placed"),
            ),
            (
                answer(BidRejection::InvalidPoison(
                    PoisonProblem::BudgetBelowAmount,
                )),
                (422, "invalid_poison"),
            ),
            (
                answer(BidRejection::TooLow {
                    minimum_next_bid: 310,
                }),
                (422, "bid_too_low"),
            ),
            (
                answer(CancelItemError::ItemNotFound),
                (404, "item_not_found"),
            ),
            (
                answer(CancelItemError::Rejected(CancelRejection::HasBids)),
                (409, "item_has_bids"),
            ),
            (
                answer(CancelItemError::Rejected(CancelRejection::NotOpen)),
                (409, "auction_closed"),
            ),
            (answer(RevealError::Sealed), (403, "bids_sealed")),
            (answer(RevealError::ItemNotFound), (404, "item_not_found")),
        ];
        for (got, expected) in cases {
            assert_eq!(got, expected);
        }
        let step = Money::new(5).unwrap();
        let too_small = BidRejection::InvalidPoison(PoisonProblem::StepBelowIncrement {
            min_increment: step,
        });
        let body = ApiError::from(too_small).body("r", "/");
        assert_eq!(body.errors.unwrap()[0].field, "poison.step");
        let low = ApiError::from(BidRejection::TooLow {
            minimum_next_bid: 310,
        })
        .body("r", "/");
        assert_eq!(low.extensions["minimum_next_bid"], 310);
    }

    #[test]
    fn refusals_carry_their_challenge_or_their_wait() {
        let header = |error: ApiError, name: header::HeaderName| {
            error
                .error_response()
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header(no_token(), header::WWW_AUTHENTICATE).as_deref(),
            Some("Bearer")
        );
        assert_eq!(
            header(
                AuthError::Rejected(TokenRejected::Expired).into(),
                header::WWW_AUTHENTICATE
            )
            .as_deref(),
            Some("Bearer error=\"invalid_token\"")
        );
        assert_eq!(
            header(StoreError::Busy.into(), header::RETRY_AFTER).as_deref(),
            Some("1")
        );
        let expired = ApiError::from(AuthError::Rejected(TokenRejected::Expired)).body("r", "/");
        assert_eq!(expired.detail, "the access token has expired; refresh it");
        let forged =
            ApiError::from(AuthError::Rejected(TokenRejected::BadSignature)).body("r", "/");
        assert_eq!(forged.detail, "the access token is invalid or revoked");
    }

    #[test]
    fn a_lock_retry_after_rounds_up_to_whole_seconds() {
        for (left_ms, header) in [
            (59_700, "60"),
            (60_000, "60"),
            (1, "1"),
            (0, "1"),
            (-5, "1"),
        ] {
            let response = account_locked(chrono::Duration::milliseconds(left_ms)).error_response();
            assert_eq!(response.status(), StatusCode::LOCKED);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER).unwrap(),
                header,
                "{left_ms} ms"
            );
        }
    }
}
