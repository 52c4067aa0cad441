//! The JSON the REST API answers with: Call, IncomingPhoneNumber and Recording resources with
//! every key Twilio sends (unknown values `null`, numbers as strings where Twilio uses
//! strings), and list pages with exactly Twilio's top-level keys — the official clients
//! reject a page with any other key.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::format::{national, rfc2822};
use crate::store::{CallRecord, NumberRecord, RecordingRecord};

/// `/2010-04-01/Accounts/{AC}`.
pub(crate) fn account_path(account_sid: &str) -> String {
    format!("/2010-04-01/Accounts/{account_sid}")
}

/// A Call resource.
pub(crate) fn call_json(c: &CallRecord) -> Value {
    let base = format!("{}/Calls/{}", account_path(&c.account_sid), c.sid);
    let sub = |name: &str| format!("{base}/{name}.json");
    let duration = match (c.started, c.ended) {
        (Some(s), Some(e)) => Some(
            e.duration_since(s)
                .unwrap_or_default()
                .as_secs()
                .to_string(),
        ),
        (None, Some(_)) => Some("0".to_string()),
        _ => None,
    };
    json!({
        "account_sid": c.account_sid,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": rfc2822(c.created),
        "date_updated": rfc2822(c.updated),
        "direction": c.direction.as_str(),
        "duration": duration,
        "end_time": c.ended.map(rfc2822),
        "forwarded_from": null,
        "from": c.from,
        "from_formatted": national(&c.from),
        "group_sid": null,
        "parent_call_sid": c.parent_call_sid,
        "phone_number_sid": c.phone_number_sid,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": c.sid,
        "start_time": c.started.map(rfc2822),
        "status": c.status.as_str(),
        "subresource_uris": {
            "feedback": sub("Feedback"),
            "notifications": sub("Notifications"),
            "recordings": sub("Recordings"),
            "streams": sub("Streams"),
            "payments": sub("Payments"),
            "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
            "transcriptions": sub("Transcriptions"),
            "siprec": sub("Siprec"),
            "events": sub("Events"),
            "feedback_summaries": format!("{}/Calls/FeedbackSummary.json", account_path(&c.account_sid)),
            "user_defined_messages": sub("UserDefinedMessages"),
        },
        "to": c.to,
        "to_formatted": national(&c.to),
        "trunk_sid": null,
        "uri": format!("{base}.json"),
    })
}

/// An IncomingPhoneNumber resource.
pub(crate) fn number_json(n: &NumberRecord) -> Value {
    let base = format!(
        "{}/IncomingPhoneNumbers/{}",
        account_path(&n.account_sid),
        n.sid
    );
    json!({
        "account_sid": n.account_sid,
        "address_requirements": "none",
        "address_sid": null,
        "api_version": "2010-04-01",
        "beta": false,
        "bundle_sid": null,
        "capabilities": {"voice": true, "sms": false, "mms": false, "fax": false},
        "date_created": rfc2822(n.created),
        "date_updated": rfc2822(n.updated),
        "emergency_address_sid": null,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": n.friendly_name,
        "identity_sid": null,
        "origin": "twilio",
        "phone_number": n.phone_number,
        "sid": n.sid,
        "sms_application_sid": "",
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": "POST",
        "sms_url": "",
        "status": "in-use",
        "status_callback": n.status_callback.clone().unwrap_or_default(),
        "status_callback_method": n.status_callback_method.as_str(),
        "subresource_uris": {"assigned_add_ons": format!("{base}/AssignedAddOns.json")},
        "trunk_sid": null,
        "type": "local",
        "uri": format!("{base}.json"),
        "voice_application_sid": "",
        "voice_caller_id_lookup": false,
        "voice_fallback_method": n.voice_fallback_method.as_str(),
        "voice_fallback_url": n.voice_fallback_url.clone().unwrap_or_default(),
        "voice_method": n.voice_method.as_str(),
        "voice_receive_mode": "voice",
        "voice_url": n.voice_url.clone().unwrap_or_default(),
    })
}

/// A Recording resource; `public_url` makes `media_url` absolute.
pub(crate) fn recording_json(r: &RecordingRecord, public_url: &str) -> Value {
    let base = format!("{}/Recordings/{}", account_path(&r.account_sid), r.sid);
    json!({
        "account_sid": r.account_sid,
        "api_version": "2010-04-01",
        "call_sid": r.call_sid,
        "channels": r.channels,
        "conference_sid": null,
        "date_created": rfc2822(r.created),
        "date_updated": rfc2822(r.created),
        "duration": r.duration_secs().to_string(),
        "encryption_details": null,
        "error_code": null,
        "media_url": format!("{public_url}{base}"),
        "price": null,
        "price_unit": "USD",
        "sid": r.sid,
        "source": r.source,
        "start_time": rfc2822(r.started),
        "status": "completed",
        "subresource_uris": {
            "add_on_results": format!("{base}/AddOnResults.json"),
            "transcriptions": format!("{base}/Transcriptions.json"),
        },
        "track": "both",
        "uri": format!("{base}.json"),
    })
}

/// Paging parameters of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) page_size: usize,
    pub(crate) page: usize,
    /// The SID after which this page starts (`PageToken=PA{sid}`).
    pub(crate) after: Option<String>,
}

impl Paging {
    /// `PageSize` (1–1000, default 50), `Page` (default 0), `PageToken`.
    pub(crate) fn parse(query: &[(String, String)]) -> Result<Self, ApiError> {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let page_size = match get("PageSize") {
            None => 50,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ApiError::invalid(20002, format!("Invalid PageSize: {v}")))?,
        };
        let page = match get("Page") {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::invalid(20002, format!("Invalid Page: {v}")))?,
        };
        let after = get("PageToken").map(|t| t.strip_prefix("PA").unwrap_or(t).to_string());
        Ok(Self {
            page_size,
            page,
            after,
        })
    }
}

/// One page of a list, shaped exactly as Twilio's: `{key: [...], end, first_page_uri,
/// next_page_uri, page, page_size, previous_page_uri, start, uri}`. `items` come with
/// their SIDs (for `PageToken`) in list order; `filters` are echoed into every URI.
pub(crate) fn page(
    key: &str,
    path: &str,
    filters: &[(String, String)],
    items: Vec<(String, Value)>,
    p: &Paging,
) -> Value {
    let start = match &p.after {
        Some(sid) => items
            .iter()
            .position(|(s, _)| s == sid)
            .map_or(p.page * p.page_size, |i| i + 1),
        None => p.page * p.page_size,
    }
    .min(items.len());
    let stop = (start + p.page_size).min(items.len());
    let uri = |page: usize, token: Option<&str>| {
        let mut q: Vec<(String, String)> = filters.to_vec();
        q.push(("PageSize".into(), p.page_size.to_string()));
        q.push(("Page".into(), page.to_string()));
        if let Some(t) = token {
            q.push(("PageToken".into(), format!("PA{t}")));
        }
        format!("{path}?{}", dialtone_protocol::webhook::form_encode(&q))
    };
    let next = (stop < items.len() && stop > start)
        .then(|| uri(p.page + 1, Some(items[stop - 1].0.as_str())));
    let previous = (p.page > 0).then(|| uri(p.page - 1, None));
    let count = stop - start;
    let list: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(count)
        .map(|(_, v)| v)
        .collect();
    json!({
        key: list,
        "end": if count > 0 { start + count - 1 } else { start },
        "first_page_uri": uri(0, None),
        "next_page_uri": next,
        "page": p.page,
        "page_size": p.page_size,
        "previous_page_uri": previous,
        "start": start,
        "uri": uri(p.page, p.after.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, Value)> {
        (0..n).map(|i| (format!("CA{i}"), json!(i))).collect()
    }

    #[test]
    fn pages_walk_by_token() {
        let p = Paging::parse(&[("PageSize".into(), "2".into())]).unwrap();
        let first = page("calls", "/x/Calls.json", &[], items(5), &p);
        assert_eq!(first["calls"], json!([0, 1]));
        assert_eq!(first["start"], 0);
        assert_eq!(first["end"], 1);
        assert_eq!(first["previous_page_uri"], Value::Null);
        let next = first["next_page_uri"].as_str().unwrap();
        assert_eq!(next, "/x/Calls.json?PageSize=2&Page=1&PageToken=PACA1");
        let q: Vec<(String, String)> =
            url::form_urlencoded::parse(next.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        let second = page(
            "calls",
            "/x/Calls.json",
            &[],
            items(5),
            &Paging::parse(&q).unwrap(),
        );
        assert_eq!(second["calls"], json!([2, 3]));
        assert_eq!(second["start"], 2);
        let last = page(
            "calls",
            "/x/Calls.json",
            &[],
            items(5),
            &Paging {
                page_size: 2,
                page: 2,
                after: Some("CA3".into()),
            },
        );
        assert_eq!(last["calls"], json!([4]));
        assert_eq!(last["next_page_uri"], Value::Null);
        let mut keys: Vec<&String> = last.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "calls",
                "end",
                "first_page_uri",
                "next_page_uri",
                "page",
                "page_size",
                "previous_page_uri",
                "start",
                "uri"
            ]
        );
    }

    #[test]
    fn filters_are_echoed_and_bad_sizes_refused() {
        let p = Paging::parse(&[]).unwrap();
        let v = page(
            "calls",
            "/x",
            &[("To".into(), "+1555".into())],
            items(0),
            &p,
        );
        assert_eq!(v["uri"], "/x?To=%2B1555&PageSize=50&Page=0");
        assert_eq!(v["calls"], json!([]));
        assert!(Paging::parse(&[("PageSize".into(), "0".into())]).is_err());
        assert!(Paging::parse(&[("PageSize".into(), "1001".into())]).is_err());
    }
}
