//! X-Twilio-Signature: Twilio's published test vector, sort order, repeated names,
//! URL variants accepted by validation, and the URL Twilio signs. Expected signatures
//! were computed independently with Python's `hmac`/`hashlib`.

use dialtone_protocol::signing::{signature, url_to_sign, validate};

fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

const DOC_URL: &str = "https://example.com/myapp.php?foo=1&bar=2";
const DOC_SIG: &str = "L/OH5YylLD5NRKLltdqwSvS0BnU=";

fn doc_params() -> Vec<(String, String)> {
    p(&[
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+14158675310"),
        ("Caller", "+14158675310"),
        ("CallSid", "CA1234567890ABCDE"),
    ])
}

#[test]
fn twilio_doc_test_vector() {
    assert_eq!(signature("12345", DOC_URL, &doc_params()), DOC_SIG);
    let mut reversed = doc_params();
    reversed.reverse();
    assert_eq!(signature("12345", DOC_URL, &reversed), DOC_SIG);
}

#[test]
fn sort_is_case_sensitive_byte_order() {
    // Byte order puts CallSid < Caller < To < callerName.
    let params = p(&[
        ("callerName", "cn"),
        ("To", "t1"),
        ("Caller", "c1"),
        ("CallSid", "CA1"),
    ]);
    // HMAC of "https://h/pCallSidCA1Callerc1Tot1callerNamecn" with key "tok".
    assert_eq!(
        signature("tok", "https://h/p", &params),
        "l+SWUa7/s12n/JwNBC6FkwM5GUU="
    );
}

#[test]
fn repeated_names_keep_their_order() {
    let params = p(&[("A", "2"), ("A", "1")]);
    // "https://h/pA2A1": stable order, as sent.
    assert_eq!(
        signature("tok", "https://h/p", &params),
        "dZuLI2dIM8Ijp7GdDRE6ABB+yOM="
    );
    // twilio-python signs the sorted form "A1A2"; validation accepts both.
    assert!(validate(
        "tok",
        "https://h/p",
        &params,
        "dZuLI2dIM8Ijp7GdDRE6ABB+yOM="
    ));
    assert!(validate(
        "tok",
        "https://h/p",
        &params,
        "TktoG6toAzoGyqslpbnl1w+Y8Hw="
    ));
}

#[test]
fn empty_params_sign_the_url_alone() {
    assert_eq!(
        signature("12345", "https://example.com/myapp", &[]),
        "XqNa/0zb23Pa5OkAE2d03kJM920="
    );
}

#[test]
fn unicode_values_are_signed_as_utf8() {
    let params = p(&[("Name", "José 😀")]);
    assert_eq!(
        signature("tok", "https://h/p", &params),
        "Rl5LlCns0xjbMdsyCRINuxrezJ8="
    );
}

#[test]
fn validate_accepts_what_twilio_python_accepts() {
    let params = doc_params();
    assert!(validate("12345", DOC_URL, &params, DOC_SIG));
    // Signed without a port; the app sees the default port or its own port.
    assert!(validate(
        "12345",
        "https://example.com:443/myapp.php?foo=1&bar=2",
        &params,
        DOC_SIG
    ));
    assert!(validate(
        "12345",
        "https://example.com:8080/myapp.php?foo=1&bar=2",
        &params,
        DOC_SIG
    ));
    // Signed with the default port; the app passes the URL without it.
    let with_443 = signature(
        "12345",
        "https://example.com:443/myapp.php?foo=1&bar=2",
        &params,
    );
    assert!(validate("12345", DOC_URL, &params, &with_443));
    // Signed with a non-default port: only that exact URL validates.
    let with_8080 = signature("12345", "http://example.com:8080/x", &params);
    assert!(validate(
        "12345",
        "http://example.com:8080/x",
        &params,
        &with_8080
    ));
    assert!(!validate(
        "12345",
        "http://example.com/x",
        &params,
        &with_8080
    ));
    // http gets :80 added, not :443.
    let with_80 = signature("12345", "http://example.com:80/x", &params);
    assert!(validate("12345", "http://example.com/x", &params, &with_80));
}

#[test]
fn validate_rejects_wrong_token_and_tampering() {
    let params = doc_params();
    assert!(!validate("54321", DOC_URL, &params, DOC_SIG));
    let mut tampered = doc_params();
    tampered[0].1 = "9999".to_owned();
    assert!(!validate("12345", DOC_URL, &tampered, DOC_SIG));
    let mut extra = doc_params();
    extra.push(("New".to_owned(), String::new()));
    assert!(!validate("12345", DOC_URL, &extra, DOC_SIG));
    assert!(!validate(
        "12345",
        "https://example.com/myapp.php?foo=1&bar=3",
        &params,
        DOC_SIG
    ));
    assert!(!validate("12345", DOC_URL, &params, ""));
    assert!(!validate(
        "12345",
        DOC_URL,
        &params,
        &DOC_SIG[..DOC_SIG.len() - 1]
    ));
}

#[test]
fn url_to_sign_follows_twilio_port_and_credential_rules() {
    assert_eq!(
        url_to_sign("https://user:pass@example.com:8443/a?b=1&c=2"),
        "https://example.com/a?b=1&c=2"
    );
    assert_eq!(
        url_to_sign("https://example.com:443/a"),
        "https://example.com/a"
    );
    assert_eq!(
        url_to_sign("http://user:pass@example.com:8080/a?b=1"),
        "http://example.com:8080/a?b=1"
    );
    assert_eq!(url_to_sign("http://example.com/a"), "http://example.com/a");
    assert_eq!(
        url_to_sign("ws://127.0.0.1:9000/media"),
        "ws://127.0.0.1:9000/media"
    );
    assert_eq!(
        url_to_sign("wss://u@h.example:8443/media"),
        "wss://h.example/media"
    );
    assert_eq!(url_to_sign("http://[::1]:8080/x"), "http://[::1]:8080/x");
    assert_eq!(url_to_sign("https://[::1]:8443/x"), "https://[::1]/x");
    // Fragments (Twilio's connection overrides) never reach the server.
    assert_eq!(url_to_sign("https://h/x?y=1#rc=2"), "https://h/x?y=1");
    // Everything else is kept byte for byte.
    assert_eq!(
        url_to_sign("https://H.Example/%7Ea?q=a%20b"),
        "https://H.Example/%7Ea?q=a%20b"
    );
}

#[test]
fn a_signed_webhook_validates_at_the_app() {
    let url = "https://user:pw@app.example:8443/voice?x=1";
    let params = doc_params();
    let sig = signature("tok", &url_to_sign(url), &params);
    // The app behind a proxy sees the URL without credentials, with or without port.
    assert!(validate(
        "tok",
        "https://app.example/voice?x=1",
        &params,
        &sig
    ));
    assert!(validate(
        "tok",
        "https://app.example:8443/voice?x=1",
        &params,
        &sig
    ));
}
