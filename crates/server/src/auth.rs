//! HTTP Basic auth as Twilio's REST API takes it: `AccountSid:AuthToken`, or an API key
//! `SK…:secret` with the account SID only in the path. Anything else is 401/20003.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::Account;
use crate::error::ApiError;

/// The account whose resources the request may touch: the credentials must belong to the
/// account named in the path.
pub(crate) fn authenticate<'a>(
    accounts: &'a [Account],
    headers: &HeaderMap,
    path_account: &str,
) -> Result<&'a Account, ApiError> {
    let (user, pass) = basic_credentials(headers).ok_or(ApiError::Unauthorized)?;
    let account = accounts
        .iter()
        .find(|a| a.sid == path_account)
        .ok_or(ApiError::Unauthorized)?;
    let ok = if user == account.sid {
        same(&pass, &account.auth_token)
    } else {
        account
            .api_keys
            .iter()
            .any(|(sid, secret)| *sid == user && same(&pass, secret))
    };
    if ok {
        Ok(account)
    } else {
        Err(ApiError::Unauthorized)
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
