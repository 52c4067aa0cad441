//! HTTP Basic auth as Twilio's REST API takes it: `AccountSid:AuthToken`, or an API key
//! `SK…:secret` with the account SID only in the path. Anything else is 401/20003.
//!
//! API keys are Twilio's *standard* keys: "access to all Twilio API resources, except for API
//! key and Account resources" (twilio.com/docs/iam/api-keys/keys-in-console). So a key never
//! reaches the Account resource, the only one that shows the master auth token
//! ([`authenticate_owner`]); everything else a key reaches belongs to its account.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Account;
use crate::error::ApiError;

/// Which credential of an account a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The account SID and its (master) auth token.
    AuthToken,
    /// One of the account's standard API keys.
    ApiKey,
}

/// The account whose resources the request may touch: the credentials must belong to the
/// account named in the path.
pub(crate) fn authenticate<'a>(
    accounts: &'a [Account],
    headers: &HeaderMap,
    path_account: &str,
) -> Result<&'a Account, ApiError> {
    authenticate_as(accounts, headers, path_account).map(|(a, _)| a)
}

/// As [`authenticate`], for the Account resource: the auth token only, as a standard API key
/// gets 401/20003 from Twilio there (the resource shows the master token).
pub(crate) fn authenticate_owner<'a>(
    accounts: &'a [Account],
    headers: &HeaderMap,
    path_account: &str,
) -> Result<&'a Account, ApiError> {
    match authenticate_as(accounts, headers, path_account)? {
        (a, Credential::AuthToken) => Ok(a),
        (_, Credential::ApiKey) => Err(ApiError::Unauthorized),
    }
}

/// The account the credentials belong to, whichever it is (the web page has no account in
/// its path).
pub(crate) fn identify<'a>(
    accounts: &'a [Account],
    headers: &HeaderMap,
) -> Result<&'a Account, ApiError> {
    let (user, pass) = basic_credentials(headers).ok_or(ApiError::Unauthorized)?;
    accounts
        .iter()
        .find(|a| check(a, &user, &pass).is_some())
        .ok_or(ApiError::Unauthorized)
}

fn authenticate_as<'a>(
    accounts: &'a [Account],
    headers: &HeaderMap,
    path_account: &str,
) -> Result<(&'a Account, Credential), ApiError> {
    let (user, pass) = basic_credentials(headers).ok_or(ApiError::Unauthorized)?;
    let account = accounts
        .iter()
        .find(|a| a.sid == path_account)
        .ok_or(ApiError::Unauthorized)?;
    check(account, &user, &pass)
        .map(|c| (account, c))
        .ok_or(ApiError::Unauthorized)
}

/// Which of `account`'s credentials `user:pass` is, if any.
fn check(account: &Account, user: &str, pass: &str) -> Option<Credential> {
    if user == account.sid {
        same(pass, &account.auth_token).then_some(Credential::AuthToken)
    } else {
        account
            .api_keys
            .iter()
            .any(|(sid, secret)| sid == user && same(pass, secret))
            .then_some(Credential::ApiKey)
    }
}

/// `Authorization: Basic base64(user:pass)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account {
            sid: "AC11111111111111111111111111111111".into(),
            auth_token: "token".into(),
            friendly_name: String::new(),
            api_keys: vec![("SK1".into(), "keysecret".into())],
            verified_caller_ids: Vec::new(),
        }
    }

    fn headers(user: &str, pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")));
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn account_token_and_api_keys() {
        let accounts = [account()];
        let sid = accounts[0].sid.clone();
        assert!(authenticate(&accounts, &headers(&sid, "token"), &sid).is_ok());
        assert!(authenticate(&accounts, &headers("SK1", "keysecret"), &sid).is_ok());
        assert_eq!(
            authenticate(&accounts, &headers(&sid, "wrong"), &sid).unwrap_err(),
            ApiError::Unauthorized
        );
        assert!(authenticate(&accounts, &HeaderMap::new(), &sid).is_err());
        // The Account resource: the auth token only, never an API key.
        assert!(authenticate_owner(&accounts, &headers(&sid, "token"), &sid).is_ok());
        assert_eq!(
            authenticate_owner(&accounts, &headers("SK1", "keysecret"), &sid).unwrap_err(),
            ApiError::Unauthorized
        );
        // The web page: any account's credentials, a key standing for its account.
        assert_eq!(
            identify(&accounts, &headers("SK1", "keysecret"))
                .unwrap()
                .sid,
            sid
        );
        assert!(identify(&accounts, &headers("SK1", "token")).is_err());
        // Right credentials, someone else's account in the path.
        assert!(
            authenticate(
                &accounts,
                &headers(&sid, "token"),
                "AC22222222222222222222222222222222"
            )
            .is_err()
        );
    }
}
