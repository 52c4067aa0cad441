//! The call engine: places one call against a voice app exactly as Twilio would and reports
//! every step.
//!
//! # Layout
//! - [`capture`]: every exchange of a call as JSON lines (`--capture`).
//! - [`config`]: what a call needs (app URL, numbers, token, the caller's script, seed,
//!   faults, virtual time), and the units parsers shared by flags and scenario files.
//! - [`fetch`]: bounded reads of what apps serve (TwiML bodies, `<Play>` audio), shared
//!   with `dialtone serve`'s caller leg.
//! - [`faults`]: seeded fault schedules (`--faults`): pure functions of seed and index.
//! - `webhook`: TwiML requests (signed form POST/GET, Twilio's headers, timeout, failure
//!   classes with Twilio's error codes).
//! - `executor`: runs TwiML verbs in order ([`Engine::place_call`]); `executor/verbs.rs`
//!   what each verb does, `executor/documents.rs` its TwiML (inline, requested, followed),
//!   `executor/streams.rs` the call's streams,
//!   `executor/recording.rs` the whole call's audio ([`CallAudio`]); [`CallHandle`] hangs up
//!   or redirects a live call.
//! - `stream`: the Media Streams WebSocket client with pacing on an absolute schedule (or
//!   virtual time); `stream/driver` its loop, with injected faults and the caller's hang-up.
//! - [`marks`]: a stream's marks counted, their round trips, a bounded sample.
//! - `retention`: the first and last few of what an app can repeat without limit.
//! - [`playout`]: sans-IO model of Twilio's playout buffer (media, `mark`, `clear`).
//! - [`turns`]: per-turn latencies against the caller audio's ground truth.
//! - [`outcome`]: the outcome class of a call or bare stream, shared by both load paths.
//! - [`report`]: the timeline, failures and measurements a call returns.
//! - [`transcription`]: real-time transcription (`<Start><Transcription>`), sans-IO: the
//!   recognizer's results on each track and when, the `statusCallbackUrl` events' parameters;
//!   `executor/transcription.rs` runs each as a background task.
//! - [`queue`]: call queues (`<Enqueue>`, `<Dial><Queue>`, REST `Queues`), one registry per
//!   engine; `executor/enqueue.rs` runs the verbs.
//! - [`record`]: `<Record>`'s report and the pure arithmetic of a recording (where it ends,
//!   what it keeps, the words in it); `executor/record.rs` runs the verb, and
//!   `executor/recording_status.rs` holds what it shares with `<Dial record>` (SIDs,
//!   `recordingStatusCallback`, the recording store).
//! - [`recordings`]: the store recordings are handed to.
//! - [`registry`]: the hook through which calls are followed (and steered) from outside,
//!   e.g. by the REST API of `dialtone call` and `dialtone load`.

mod callbacks;
pub mod capture;
pub mod conference;
pub mod config;
pub mod dial;
mod event_text;
mod executor;
pub mod faults;
pub mod fetch;
pub mod histogram;
mod latencies;
pub mod live;
pub mod marks;
pub mod outcome;
pub mod playout;
pub mod queue;
pub mod record;
pub mod recordings;
pub mod registry;
pub mod relay;
pub mod report;
mod retention;
pub mod speech;
mod stream;
mod timeline;
pub mod transcription;
pub mod turns;
mod webhook;

pub use config::{
    CallConfig, CallerAudioStart, CallerScript, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN,
    FrameLateness, HttpMethod,
};
pub use dialtone_corpus::Turn;
pub use dialtone_net::{self as net, Net, TlsOptions, Tunnel, Tunnels};
pub use event_text::EventText;
pub use executor::{
    CallAudio, CallHandle, CallResult, Engine, LOOP_DOCUMENTS, PreparedCall, Redirect, RelayAudio,
    SAY_MS_PER_WORD, StreamAudio,
};
pub use latencies::{Latencies, LatencyView};
pub use outcome::Outcome;
pub use registry::{CallRegistry, REST_HANGUP};
pub use report::{
    CallEvent, CallReport, EventKind, Failure, StreamReport, new_lateness_histogram, url_via,
};
pub use stream::{StreamOutcome, plane};
pub use timeline::EventSink;
