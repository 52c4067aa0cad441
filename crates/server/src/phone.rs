//! Placeholder for the softphone's WebSocket (`/phone/ws`): written on another branch; this
//! stand-in only gives the page a path to render until that branch is merged.

use crate::Shared;
use crate::config::Account;

pub(crate) fn ws_path(_shared: &Shared, _viewer: Option<&Account>) -> Option<String> {
    Some("/phone/ws?account=AC&token=x".into())
}
