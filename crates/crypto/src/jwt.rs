//! Access tokens: HS256 JWTs with `iss`, `aud`, `exp` and `typ` required and
//! checked, the algorithm pinned, at most 5 s of clock leeway, and expiry
//! judged by the injected clock.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pp_domain::auth::ports::AccessTokens;
use pp_domain::auth::{AccessClaims, TokenRejected};
use pp_domain::ports::StoreError;
use pp_domain::{Role, SessionId, Timestamp, TokenId, UserId};
use serde::{Deserialize, Serialize};

/// What distinguishes this service's access tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtSettings {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Clock leeway in seconds (at most 5).
    pub leeway_secs: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            issuer: "poison-pill".to_owned(),
            audience: "poison-pill-api".to_owned(),
            leeway_secs: 5,
        }
    }
}

/// The `typ` claim of an access token; refresh, reset, verification and
/// WebSocket tokens are not JWTs at all, and no other `typ` is accepted.
const ACCESS_TYP: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    jti: String,
    sid: String,
    iat: i64,
    exp: i64,
    iss: String,
    aud: String,
    typ: String,
}

/// The [`AccessTokens`] port with `jsonwebtoken` (aws-lc-rs backend).
pub struct JwtAccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtAccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAccessTokens")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl JwtAccessTokens {
    /// Signs and verifies with `secret` (its bytes).
    #[must_use]
    pub fn new(secret: &[u8], settings: JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is judged against the injected clock in `verify`.
        validation.validate_exp = false;
        validation.leeway = settings.leeway_secs.min(5);
        JwtAccessTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            settings,
        }
    }
}

fn rejected(kind: &ErrorKind) -> TokenRejected {
    match kind {
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenRejected::BadSignature
        }
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenRejected::WrongKind,
        ErrorKind::ExpiredSignature => TokenRejected::Expired,
        _ => TokenRejected::Malformed,
    }
}

fn parse<T: std::str::FromStr>(value: &str) -> Result<T, TokenRejected> {
    value.parse().map_err(|_| TokenRejected::Malformed)
}

impl AccessTokens for JwtAccessTokens {
    fn issue(&self, claims: &AccessClaims) -> Result<String, StoreError> {
        let body = Claims {
            sub: claims.user.to_string(),
            role: claims.role.as_str().to_owned(),
            jti: claims.token.to_string(),
            sid: claims.session.to_string(),
            iat: claims.issued_at.timestamp(),
            exp: claims.expires_at.timestamp(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            typ: ACCESS_TYP.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &body, &self.encoding)
            .map_err(|e| StoreError::Unknown(anyhow::anyhow!("cannot sign an access token: {e}")))
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, TokenRejected> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| rejected(e.kind()))?;
        let claims = data.claims;
        if claims.typ != ACCESS_TYP {
            return Err(TokenRejected::WrongKind);
        }
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if claims.exp.saturating_add(leeway) < now.timestamp() {
            return Err(TokenRejected::Expired);
        }
        let issued_at = Timestamp::from_timestamp(claims.iat, 0).ok_or(TokenRejected::Malformed)?;
        let expires_at =
            Timestamp::from_timestamp(claims.exp, 0).ok_or(TokenRejected::Malformed)?;
        Ok(AccessClaims {
            user: parse::<UserId>(&claims.sub)?,
            role: parse::<Role>(&claims.role)?,
            token: parse::<TokenId>(&claims.jti)?,
            session: parse::<SessionId>(&claims.sid)?,
            issued_at,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{Duration, SubsecRound, Utc};
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &[u8] = b"a-test-secret-that-is-at-least-32-bytes";

    fn tokens() -> JwtAccessTokens {
        JwtAccessTokens::new(SECRET, JwtSettings::default())
    }

    fn claims() -> AccessClaims {
        let now = Utc::now().trunc_subsecs(0);
        AccessClaims {
            user: UserId::generate(),
            role: Role::Admin,
            token: TokenId::generate(),
            session: SessionId::generate(),
            issued_at: now,
            expires_at: now + Duration::minutes(15),
        }
    }

    /// Re-signs `payload` with `alg` and `key` (for forgeries).
    fn forge(header: Value, payload: &Value, key: &[u8]) -> String {
        use hmac_sign::sign;
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(payload.to_string());
        let signature = sign(key, format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// HMAC-SHA256 by hand (RFC 2104), so the tests can forge tokens without
    /// trusting the library under test.
    mod hmac_sign {
        use sha2::{Digest, Sha256};

        pub fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
            let mut block = [0u8; 64];
            block[..key.len()].copy_from_slice(key);
            let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
            let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
            let inner_hash = Sha256::new()
                .chain_update(&inner)
                .chain_update(message)
                .finalize();
            Sha256::new()
                .chain_update(&outer)
                .chain_update(inner_hash)
                .finalize()
                .to_vec()
        }
    }

    fn payload(c: &AccessClaims) -> Value {
        json!({
            "sub": c.user.to_string(), "role": "admin", "jti": c.token.to_string(),
            "sid": c.session.to_string(), "iat": c.issued_at.timestamp(), "exp": c.expires_at.timestamp(),
            "iss": "poison-pill", "aud": "poison-pill-api", "typ": "access",
        })
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let c = claims();
        let token = tokens().issue(&c).unwrap();
        assert_eq!(tokens().verify(&token, c.issued_at).unwrap(), c);
    }

    #[test]
    fn the_hand_made_signature_matches_the_library_so_forgeries_below_are_meaningful() {
        let c = claims();
        let forged = forge(json!({"alg": "HS256", "typ": "JWT"}), &payload(&c), SECRET);
        assert_eq!(tokens().verify(&forged, c.issued_at).unwrap(), c);
    }

    #[test]
    fn expiry_follows_the_clock_with_at_most_five_seconds_of_leeway() {
        let c = claims();
        let token = tokens().issue(&c).unwrap();
        assert!(
            tokens()
                .verify(&token, c.expires_at + Duration::seconds(5))
                .is_ok()
        );
        assert_eq!(
            tokens().verify(&token, c.expires_at + Duration::seconds(6)),
            Err(TokenRejected::Expired)
        );
        let lenient = JwtAccessTokens::new(
            SECRET,
            JwtSettings {
                leeway_secs: 60,
                ..JwtSettings::default()
            },
        );
        assert!(
            lenient
                .verify(&token, c.expires_at + Duration::seconds(6))
                .is_err()
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let c = claims();
        let body = URL_SAFE_NO_PAD.encode(payload(&c).to_string());
        for header in [json!({"alg": "none"}), json!({"alg": "None", "typ": "JWT"})] {
            let h = URL_SAFE_NO_PAD.encode(header.to_string());
            for token in [format!("{h}.{body}."), format!("{h}.{body}")] {
                assert!(tokens().verify(&token, c.issued_at).is_err(), "{header}");
            }
        }
        let hs512 = forge(json!({"alg": "HS512"}), &payload(&c), SECRET);
        assert_eq!(
            tokens().verify(&hs512, c.issued_at),
            Err(TokenRejected::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_or_another_key_is_a_bad_signature() {
        let c = claims();
        let token = tokens().issue(&c).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut tampered = payload(&c);
        tampered["role"] = json!("user");
        parts[1] = URL_SAFE_NO_PAD.encode(tampered.to_string());
        assert_eq!(
            tokens().verify(&parts.join("."), c.issued_at),
            Err(TokenRejected::BadSignature)
        );
        let other_key = forge(
            json!({"alg": "HS256"}),
            &payload(&c),
            b"another-secret-of-enough-length-123",
        );
        assert_eq!(
            tokens().verify(&other_key, c.issued_at),
            Err(TokenRejected::BadSignature)
        );
    }

    #[test]
    fn missing_or_foreign_issuer_audience_or_kind_are_refused() {
        let c = claims();
        for (field, value) in [
            ("iss", None),
            ("aud", None),
            ("exp", None),
            ("sub", None),
            ("iss", Some(json!("someone-else"))),
            ("aud", Some(json!("another-api"))),
            ("typ", Some(json!("refresh"))),
            ("typ", None),
            ("sid", Some(json!("not-a-uuid"))),
        ] {
            let mut body = payload(&c);
            match value.clone() {
                Some(v) => body[field] = v,
                None => {
                    body.as_object_mut().unwrap().remove(field);
                }
            }
            let token = forge(json!({"alg": "HS256"}), &body, SECRET);
            assert!(
                tokens().verify(&token, c.issued_at).is_err(),
                "{field}: {value:?}"
            );
        }
        assert_eq!(
            tokens().verify("garbage", c.issued_at),
            Err(TokenRejected::Malformed)
        );
    }
}
