//! Each 12100 (parse) and 12200 (schema) class, with the exact line (and column for 12100)
//! asserted on multi-line documents.

mod common;

use common::{body_schema_err, err, parse_err, schema_err};
use dialtone_twiml::TwimlError;

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n";

// ---------------------------------------------------------------- 12100

#[test]
fn empty_documents() {
    parse_err("", 1, 1, "empty document");
    parse_err("  \n  ", 2, 3, "empty document");
    parse_err(
        "<?xml version=\"1.0\"?>\n<!-- nothing -->\n",
        3,
        1,
        "empty document",
    );
    parse_err("\u{feff}", 1, 1, "empty document");
}

#[test]
fn root_must_be_response() {
    parse_err(
        "<?xml version=\"1.0\"?>\n<Responce>\n</Responce>",
        2,
        1,
        "root element must be <Response>",
    );
    parse_err(
        "<response><Say>x</Say></response>",
        1,
        1,
        "found <response>",
    );
    parse_err("<html><body>502</body></html>", 1, 1, "root element");
}

#[test]
fn text_outside_root() {
    parse_err("hello\n<Response/>", 1, 1, "outside the <Response>");
    parse_err("<Response/>\n  trailing", 2, 3, "outside the <Response>");
    parse_err("{\"error\": \"json\"}", 1, 1, "outside the <Response>");
}

#[test]
fn only_one_root() {
    parse_err("<Response/>\n<Response/>", 2, 1, "only one root element");
}

#[test]
fn unescaped_ampersand_in_text() {
    let xml = format!("{HEAD}  <Say>hi</Say>\n  <Redirect>/next?a=1&b=2</Redirect>\n</Response>");
    parse_err(&xml, 4, 22, "unescaped '&'");
    parse_err(
        "<Response>\n<Say>Tom & Jerry</Say>\n</Response>",
        2,
        10,
        "unescaped '&'",
    );
}

#[test]
fn unescaped_ampersand_in_attribute() {
    let xml = "<Response>\n\n<Gather action=\"/g?a=1&b=2\"/>\n</Response>";
    parse_err(xml, 3, 23, "unescaped '&'");
}

#[test]
fn undefined_entities() {
    parse_err(
        "<Response>\n<Say>a&nbsp;b</Say>\n</Response>",
        2,
        7,
        "undefined entity &nbsp;",
    );
    parse_err(
        "<Response>\n<Play loop=\"&x;\">/a</Play>\n</Response>",
        2,
        13,
        "undefined entity &x;",
    );
    // `&b=2;` looks like a reference but is not a name Twilio knows.
    let e = err("<Response><Redirect>/n?a=1&b=2;</Redirect></Response>");
    assert_eq!(e.code(), 12100);
}

#[test]
fn mismatched_and_unclosed_tags() {
    let e = err("<Response>\n  <Say>hi</Play>\n</Response>");
    assert!(
        matches!(&e, TwimlError::Parse { line: 2, message, .. } if message.contains("expected </Say>, found </Play>")),
        "{e}"
    );
    parse_err("<Response>\n<Say>hi", 2, 8, "<Say> is not closed");
    parse_err("<Response>\n<Hangup/>\n", 3, 1, "<Response> is not closed");
    let e = err("<Response/>\n</Response>");
    assert!(matches!(&e, TwimlError::Parse { line: 2, .. }), "{e}");
}

#[test]
fn broken_markup() {
    let e = err("<Response>\n<Say voice=alice>hi</Say>\n</Response>");
    assert!(
        matches!(&e, TwimlError::Parse { line: 2, message, .. } if message.contains("quoted")),
        "{e}"
    );
    let e = err("<Response>\n<Say voice=\"a\" voice=\"b\">hi</Say>\n</Response>");
    assert!(
        matches!(&e, TwimlError::Parse { line: 2, column: 16, message } if message.contains("duplicate")),
        "{e}"
    );
    parse_err(
        "<Response>\n<Play loop=\"<1\">/a</Play>\n</Response>",
        2,
        13,
        "'<' is not allowed",
    );
    let e = err("<Response>\n<!-- a -- b -->\n</Response>");
    assert!(matches!(&e, TwimlError::Parse { line: 2, .. }), "{e}");
    let e = err("<Response>\n<Say>hi</Say\n");
    assert_eq!(e.code(), 12100);
}

#[test]
fn parse_error_wins_over_earlier_schema_error() {
    // Twilio parses the whole document before validating it.
    let xml = "<Response>\n<Speak>x</Speak>\n<Say>a & b</Say>\n</Response>";
    parse_err(xml, 3, 8, "unescaped '&'");
    let xml = "<Response>\n<Speak>x</Speak>\n</Response>\n<Response/>";
    parse_err(xml, 4, 1, "only one root element");
}

// ---------------------------------------------------------------- 12200

#[test]
fn unknown_verbs() {
    schema_err(
        &format!("{HEAD}  <Say>hi</Say>\n  <Speak>hi</Speak>\n</Response>"),
        4,
        "Speak",
        "unknown verb <Speak>",
    );
    schema_err(
        "<Response>\n<say>hi</say>\n</Response>",
        2,
        "say",
        "did you mean <Say>?",
    );
    schema_err(
        "<Response>\n\n<Stream url=\"wss://h\"/>\n</Response>",
        3,
        "Stream",
        "is a noun",
    );
    schema_err(
        "<Response>\n<Parameter name=\"a\" value=\"b\"/>\n</Response>",
        2,
        "Parameter",
        "is a noun",
    );
    body_schema_err("<enqueue>q</enqueue>", "enqueue", "did you mean <Enqueue>?");
    body_schema_err("<Task>{}</Task>", "Task", "<Task> is a noun");
}

#[test]
fn enqueue_and_leave() {
    schema_err(
        "<Response>\n<Enqueue action=\"/a\">\n</Enqueue>\n</Response>",
        2,
        "Enqueue",
        "<Enqueue> needs a queue name as its text or a workflowSid",
    );
    body_schema_err(
        r#"<Enqueue workflowSid=" "/>"#,
        "Enqueue",
        "needs a queue name",
    );
    body_schema_err(
        &format!("<Enqueue>{}</Enqueue>", "q".repeat(65)),
        "Enqueue",
        "queue name must be at most 64 characters, found 65",
    );
    body_schema_err(
        r#"<Enqueue waitUrlMethod="PUT">q</Enqueue>"#,
        "Enqueue",
        "attribute waitUrlMethod=\"PUT\" is not GET or POST",
    );
    body_schema_err(
        r#"<Enqueue maxQueueSize="big">q</Enqueue>"#,
        "Enqueue",
        "attribute maxQueueSize=\"big\" is not a whole number",
    );
    body_schema_err(
        r#"<Enqueue waiturl="/w">q</Enqueue>"#,
        "Enqueue",
        "did you mean waitUrl?",
    );
    schema_err(
        "<Response>\n<Enqueue>\n  q<Say>hi</Say>\n</Enqueue>\n</Response>",
        3,
        "Say",
        "<Enqueue> may only contain a queue name and <Task>, found <Say>",
    );
    schema_err(
        "<Response>\n<Enqueue workflowSid=\"WW1\">\n<Task>{}</Task>\n<Task>{}</Task>\n</Enqueue>\n</Response>",
        4,
        "Task",
        "<Enqueue> may contain only one <Task>",
    );
    body_schema_err(
        r#"<Enqueue workflowSid="WW1"><Task priority="high">{}</Task></Enqueue>"#,
        "Task",
        "attribute priority=\"high\" is not a whole number",
    );
    body_schema_err(
        r#"<Enqueue workflowSid="WW1"><Task timeout="0">{}</Task></Enqueue>"#,
        "Task",
        "attribute timeout=\"0\" must be at least 1",
    );
    body_schema_err(
        r#"<Enqueue workflowSid="WW1"><Task channel="voice">{}</Task></Enqueue>"#,
        "Task",
        "unknown attribute channel on <Task>",
    );
    body_schema_err(
        r#"<Enqueue workflowSid="WW1"><Task><a/></Task></Enqueue>"#,
        "a",
        "<Task> may only contain text, found <a>",
    );
    body_schema_err(
        r#"<Leave now="1"/>"#,
        "Leave",
        "unknown attribute now on <Leave>",
    );
    body_schema_err(
        "<Leave>q</Leave>",
        "Leave",
        "text is not allowed directly inside <Leave>",
    );
    body_schema_err(
        "<Leave><Say>x</Say></Leave>",
        "Say",
        "<Leave> may only contain no elements",
    );
}

#[test]
fn dial_noun_attribute_values() {
    schema_err(
        "<Response>\n<Dial>\n<Conference beep=\"yes\">room</Conference>\n</Dial>\n</Response>",
        3,
        "Conference",
        "attribute beep=\"yes\" must be true, false, onEnter or onExit",
    );
    body_schema_err(
        r#"<Dial><Conference beep="onenter">r</Conference></Dial>"#,
        "Conference",
        "must be true, false, onEnter or onExit",
    );
    body_schema_err(
        r#"<Dial><Conference muted="maybe">r</Conference></Dial>"#,
        "Conference",
        "attribute muted=\"maybe\" is not true or false",
    );
    body_schema_err(
        r#"<Dial><Conference startConferenceOnEnter="no">r</Conference></Dial>"#,
        "Conference",
        "attribute startConferenceOnEnter=\"no\" is not true or false",
    );
    body_schema_err(
        r#"<Dial><Conference endConferenceOnExit="">r</Conference></Dial>"#,
        "Conference",
        "attribute endConferenceOnExit=\"\" is not true or false",
    );
    body_schema_err(
        r#"<Dial><Conference maxParticipants="0">r</Conference></Dial>"#,
        "Conference",
        "attribute maxParticipants=\"0\" must be at least 1",
    );
    body_schema_err(
        r#"<Dial><Conference maxParticipants="251">r</Conference></Dial>"#,
        "Conference",
        "attribute maxParticipants=\"251\" must be at most 250",
    );
    body_schema_err(
        r#"<Dial><Conference maxParticipants="many">r</Conference></Dial>"#,
        "Conference",
        "is not a whole number",
    );
    body_schema_err(
        r#"<Dial><Conference record="true">r</Conference></Dial>"#,
        "Conference",
        "attribute record=\"true\" must be one of do-not-record, record-from-start",
    );
    body_schema_err(
        r#"<Dial><Conference statusCallbackEvent="start join completed">r</Conference></Dial>"#,
        "Conference",
        "attribute statusCallbackEvent=\"start join completed\": completed is not one of start, end, join, leave, mute, hold, modify, speaker, announcement",
    );
    body_schema_err(
        &format!("<Dial><Conference>{}</Conference></Dial>", "r".repeat(129)),
        "Conference",
        "conference name must be at most 128 characters, found 129",
    );
    body_schema_err(
        r#"<Dial><Number statusCallbackEvent="initiated,ringing">+1</Number></Dial>"#,
        "Number",
        "initiated,ringing is not one of initiated, ringing, answered, completed",
    );
    body_schema_err(
        r#"<Dial><Client statusCallbackEvent="join">a</Client></Dial>"#,
        "Client",
        "join is not one of initiated",
    );
    body_schema_err(
        r#"<Dial><Sip statusCallbackEvent="Answered">sip:a@b</Sip></Dial>"#,
        "Sip",
        "Answered is not one of",
    );
    body_schema_err(
        r#"<Dial><Number sendDigits="12x">+1</Number></Dial>"#,
        "Number",
        "attribute sendDigits=\"12x\" contains 'x'",
    );
    body_schema_err(
        r#"<Dial><Queue method="PUT">support</Queue></Dial>"#,
        "Queue",
        "attribute method=\"PUT\" is not GET or POST",
    );
    // Only a later noun is wrong: still an error, on that noun.
    body_schema_err(
        r#"<Dial><Number>+1</Number><Number statusCallbackEvent="hangup">+2</Number></Dial>"#,
        "Number",
        "hangup is not one of",
    );
}

#[test]
fn bad_nesting() {
    schema_err(
        "<Response>\n<Say>hi\n  <Play>/a</Play>\n</Say>\n</Response>",
        3,
        "Play",
        "<Say> may only contain text and SSML",
    );
    schema_err(
        "<Response>\n<Gather>\n  <Say>x</Say>\n  <Dial>+1</Dial>\n</Gather>\n</Response>",
        4,
        "Dial",
        "<Gather> may only contain <Say>, <Play>, <Pause>, found <Dial>",
    );
    schema_err(
        "<Response>\n<Gather>\n<Gather/>\n</Gather>\n</Response>",
        3,
        "Gather",
        "found <Gather>",
    );
    schema_err(
        "<Response>\n<Pause>\n<Say>x</Say>\n</Pause>\n</Response>",
        3,
        "Say",
        "<Pause> may only contain no elements",
    );
    schema_err(
        "<Response>\n<Play>\n<Say>x</Say>\n</Play>\n</Response>",
        3,
        "Say",
        "<Play> may only contain text",
    );
    schema_err(
        "<Response>\n<Redirect><Hangup/></Redirect>\n</Response>",
        2,
        "Hangup",
        "<Redirect> may only contain text",
    );
    schema_err(
        "<Response>\n<Record>\n<Say>x</Say></Record>\n</Response>",
        3,
        "Say",
        "<Record>",
    );
    schema_err(
        "<Response>\n<Hangup>\n<Say>x</Say></Hangup>\n</Response>",
        3,
        "Say",
        "<Parameter>",
    );
    schema_err(
        "<Response>\n<Gather>\n<Parameter name=\"a\"/>\n</Gather>\n</Response>",
        3,
        "Parameter",
        "<Gather> may only contain",
    );
    schema_err(
        "<Response>\n<Start>\n<Stream url=\"wss://h\">\n<Say>x</Say>\n</Stream>\n</Start>\n</Response>",
        4,
        "Say",
        "<Stream> may only contain <Parameter>",
    );
}

#[test]
fn connect_start_stop_nouns() {
    schema_err(
        "<Response>\n<Connect>\n</Connect>\n</Response>",
        2,
        "Connect",
        "<Connect> must contain one of <Stream>",
    );
    schema_err(
        "<Response>\n<Connect/>\n</Response>",
        2,
        "Connect",
        "must contain",
    );
    schema_err(
        "<Response>\n<Connect>\n<Stream url=\"wss://a\"/>\n<Stream url=\"wss://b\"/>\n</Connect>\n</Response>",
        4,
        "Stream",
        "only one noun",
    );
    schema_err(
        "<Response>\n<Connect>\n<Say>x</Say>\n</Connect>\n</Response>",
        3,
        "Say",
        "<Connect> may only contain",
    );
    schema_err(
        "<Response>\n<Start/>\n</Response>",
        2,
        "Start",
        "must contain",
    );
    schema_err(
        "<Response>\n<Start><Room>r</Room></Start>\n</Response>",
        2,
        "Room",
        "<Start> may only contain",
    );
    schema_err(
        "<Response>\n<Stop/>\n</Response>",
        2,
        "Stop",
        "must contain",
    );
    schema_err(
        "<Response>\n<Connect>hello<Stream url=\"wss://a\"/></Connect>\n</Response>",
        2,
        "Connect",
        "text is not allowed",
    );
}

#[test]
fn stream_requirements() {
    schema_err(
        "<Response>\n<Connect>\n<Stream/>\n</Connect>\n</Response>",
        3,
        "Stream",
        "requires a url",
    );
    schema_err(
        "<Response>\n<Start>\n<Stream url=\"\"/>\n</Start>\n</Response>",
        3,
        "Stream",
        "requires a url",
    );
    schema_err(
        "<Response>\n<Connect>\n<Stream url=\"https://h/m\"/>\n</Connect>\n</Response>",
        3,
        "Stream",
        "<Stream> url must be ws:// or wss://",
    );
    body_schema_err(
        r#"<Start><Stream url="http://h/m"/></Start>"#,
        "Stream",
        "ws:// or wss://",
    );
    schema_err(
        "<Response>\n<Start>\n<Stream url=\"wss://h\" track=\"sideways\"/>\n</Start>\n</Response>",
        3,
        "Stream",
        "attribute track=\"sideways\" must be one of inbound_track, outbound_track, both_tracks",
    );
    schema_err(
        "<Response>\n<Start>\n<Stream url=\"wss://h\" statusCallbackMethod=\"PATCH\"/>\n</Start>\n</Response>",
        3,
        "Stream",
        "is not GET or POST",
    );
}

#[test]
fn parameter_requirements() {
    schema_err(
        "<Response>\n<Connect>\n<Stream url=\"wss://h\">\n<Parameter value=\"v\"/>\n</Stream>\n</Connect>\n</Response>",
        4,
        "Parameter",
        "requires a name",
    );
    let long = format!(
        "<Response>\n<Connect>\n<Stream url=\"wss://h\">\n<Parameter name=\"k\" value=\"{}\"/>\n</Stream>\n</Connect>\n</Response>",
        "v".repeat(499)
    );
    schema_err(&long, 4, "Parameter", "under 500 characters combined");
    body_schema_err(
        r#"<Start><Stream url="wss://h"><Parameter name="a" value="b" extra="c"/></Stream></Start>"#,
        "Parameter",
        "unknown attribute extra on <Parameter>",
    );
}

#[test]
fn bad_attribute_values() {
    schema_err(
        "<Response>\n<Say loop=\"x\">hi</Say>\n</Response>",
        2,
        "Say",
        "attribute loop=\"x\" is not a whole number",
    );
    schema_err(
        "<Response>\n\n<Pause length=\"-1\"/>\n</Response>",
        3,
        "Pause",
        "attribute length=\"-1\" is not a whole number",
    );
    body_schema_err(r#"<Pause length="0"/>"#, "Pause", "must be at least 1");
    body_schema_err(r#"<Pause length="1.5"/>"#, "Pause", "not a whole number");
    schema_err(
        "<Response>\n<Gather numDigits=\"0\"/>\n</Response>",
        2,
        "Gather",
        "attribute numDigits=\"0\" must be at least 1",
    );
    schema_err(
        "<Response>\n<Redirect method=\"PUT\">/x</Redirect>\n</Response>",
        2,
        "Redirect",
        "attribute method=\"PUT\" is not GET or POST",
    );
    schema_err(
        "<Response>\n<Reject reason=\"maybe\"/>\n</Response>",
        2,
        "Reject",
        "attribute reason=\"maybe\" must be one of rejected, busy",
    );
    body_schema_err(r#"<Gather input="voice"/>"#, "Gather", "input=\"voice\"");
    body_schema_err(r#"<Gather input=""/>"#, "Gather", "input=\"\"");
    body_schema_err(r#"<Gather finishOnKey="ab"/>"#, "Gather", "contains 'a'");
    body_schema_err(r#"<Gather finishOnKey="12"/>"#, "Gather", "single key");
    body_schema_err(
        r#"<Gather speechTimeout="soon"/>"#,
        "Gather",
        "auto or a whole number",
    );
    body_schema_err(
        r#"<Gather bargeIn="yes"/>"#,
        "Gather",
        "attribute bargeIn=\"yes\" is not true or false",
    );
    body_schema_err(r#"<Gather timeout="99999999999"/>"#, "Gather", "too large");
    body_schema_err(r#"<Record finishOnKey="x"/>"#, "Record", "contains 'x'");
    body_schema_err(r#"<Record playBeep="no"/>"#, "Record", "not true or false");
    body_schema_err(
        r#"<Record trim="maybe"/>"#,
        "Record",
        "trim-silence, do-not-trim",
    );
    body_schema_err(r#"<Record maxLength="0"/>"#, "Record", "at least 1");
    body_schema_err(r#"<Play digits="12x">/a</Play>"#, "Play", "contains 'x'");
    body_schema_err(
        r#"<Dial timeout="soon">+1</Dial>"#,
        "Dial",
        "not a whole number",
    );
    body_schema_err(
        r#"<Dial><Conference waitMethod="PUT">r</Conference></Dial>"#,
        "Conference",
        "waitMethod=\"PUT\"",
    );
}

#[test]
fn unknown_attributes() {
    schema_err(
        "<Response>\n<Say foo=\"1\">hi</Say>\n</Response>",
        2,
        "Say",
        "unknown attribute foo on <Say>",
    );
    body_schema_err(
        r#"<Gather numdigits="1"/>"#,
        "Gather",
        "did you mean numDigits?",
    );
    body_schema_err(
        r#"<Dial statusCallbackEvent="answered">+1</Dial>"#,
        "Dial",
        "unknown attribute statusCallbackEvent on <Dial>",
    );
    body_schema_err(
        r#"<Dial><Number bogus="1">+1</Number></Dial>"#,
        "Number",
        "unknown attribute bogus on <Number>",
    );
    body_schema_err(
        r#"<Hangup reason="x"/>"#,
        "Hangup",
        "unknown attribute reason",
    );
    body_schema_err(
        r#"<Stop name="x"><Stream name="x"/></Stop>"#,
        "Stop",
        "unknown attribute name",
    );
    schema_err(
        "<Response foo=\"1\">\n</Response>",
        1,
        "Response",
        "unknown attribute foo on <Response>",
    );
}

#[test]
fn missing_required_content() {
    schema_err(
        "<Response>\n<Play>   </Play>\n</Response>",
        2,
        "Play",
        "needs an audio URL",
    );
    schema_err(
        "<Response>\n<Play/>\n</Response>",
        2,
        "Play",
        "needs an audio URL",
    );
    schema_err(
        "<Response>\n<Redirect/>\n</Response>",
        2,
        "Redirect",
        "needs a URL",
    );
    schema_err(
        "<Response>\n<Redirect method=\"GET\">\n</Redirect>\n</Response>",
        2,
        "Redirect",
        "needs a URL",
    );
    schema_err(
        "<Response>\n<Dial/>\n</Response>",
        2,
        "Dial",
        "needs a number",
    );
    body_schema_err("<Dial><Number/></Dial>", "Number", "needs a value");
    body_schema_err("<Dial>+1<Number>+2</Number></Dial>", "Dial", "not both");
    body_schema_err(
        "<Dial><Say>x</Say></Dial>",
        "Say",
        "<Dial> may only contain a number or <Number>",
    );
}

#[test]
fn play_digits_not_allowed_in_gather() {
    schema_err(
        "<Response>\n<Gather>\n<Play digits=\"1\"/>\n</Gather>\n</Response>",
        3,
        "Play",
        "digits attribute is not allowed on <Play> inside <Gather>",
    );
}

#[test]
fn stray_text() {
    schema_err(
        "<Response>\n  Hello\n</Response>",
        1,
        "Response",
        "text is not allowed directly inside <Response>",
    );
    schema_err(
        "<Response>\n<Gather>\npress 1\n</Gather>\n</Response>",
        2,
        "Gather",
        "text is not allowed",
    );
    schema_err(
        "<Response>\n<Pause>3</Pause>\n</Response>",
        2,
        "Pause",
        "text is not allowed",
    );
}

#[test]
fn error_display_and_codes() {
    let e = err("<Response>\n<Speak/>\n</Response>");
    assert_eq!((e.code(), e.line()), (12200, 2));
    assert_eq!(
        e.to_string(),
        "12200 schema validation error at line 2: <Speak>: unknown verb <Speak>"
    );
    let e = err("");
    assert_eq!((e.code(), e.line()), (12100, 1));
    assert!(
        e.to_string()
            .starts_with("12100 document parse failure at line 1, column 1: ")
    );
}

#[test]
fn attribute_count_is_capped_and_reading_stops_at_the_cap() {
    use dialtone_twiml::MAX_ATTRIBUTES;
    // The cap leaves room for every real element: MAX namespace declarations are accepted.
    let decls: String = (0..MAX_ATTRIBUTES)
        .map(|i| format!(" xmlns:n{i}=\"urn:x\""))
        .collect();
    assert!(dialtone_twiml::parse(&format!("<Response{decls}/>")).is_ok());
    // 100,000 attributes: refused at the first one over the cap. The error's column is that
    // attribute's, which shows the reader stopped there: the rest of the tag is never
    // compared (the old duplicate check compared each name with every earlier one).
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    let doc = format!("<Response><Say{attrs}>x</Say></Response>");
    let over = doc.find(&format!(" a{MAX_ATTRIBUTES}=")).unwrap() + 2;
    match dialtone_twiml::parse(&doc) {
        Err(TwimlError::Parse {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column as usize), (1, over), "{message}");
            assert!(message.contains("more than 100 attributes"), "{message}");
        }
        other => panic!("expected 12100, got {other:?}"),
    }
}
