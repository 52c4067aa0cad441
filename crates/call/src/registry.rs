//! A hook for following calls from outside the engine. Whoever places calls (`dialtone call`,
//! the load engine) can hand each one to a [`CallRegistry`]: it gets the call's
//! [`CallHandle`] and parameters before the call runs, sees its timeline as it happens, and
//! its report at the end. The CLI wires in the REST API of `dialtone-server`, so apps can
//! list, fetch, hang up and redirect the calls dialtone places; the engine knows nothing of
//! HTTP.

use std::sync::Arc;

use futures_util::FutureExt;

use crate::config::CallConfig;
use crate::executor::{CallHandle, CallResult, Engine};
use crate::report::{CallEvent, CallReport};
use crate::timeline::EventSink;

/// How the end reason of a call hung up through the REST API begins (the rest names the
/// update, e.g. ` (Status=completed)`), so reports can count such calls.
pub const REST_HANGUP: &str = "hung up through the REST API";

/// Follows calls from outside: registered before a call runs, told of every event, and of
/// the end.
pub trait CallRegistry: Send + Sync {
    /// A call is about to run: `handle` steers it (hang up, redirect), `cfg` is what it was
    /// placed with. Returns the sink that sees its timeline as it happens (the last event is
    /// `Ended`).
    fn register(&self, handle: &CallHandle, cfg: &CallConfig) -> EventSink;

    /// The call finished; its report (failures included).
    fn finished(&self, report: &CallReport);
}

impl Engine {
    /// Places one call like [`Engine::place_call`], registered with `registry` (when given)
    /// for its whole life. (Prepared before the future is made, so the future does not carry
    /// the config beside the call made from it.)
    pub fn place_registered_call<'a>(
        &'a self,
        cfg: CallConfig,
        sink: Option<EventSink>,
        registry: Option<&'a dyn CallRegistry>,
    ) -> impl Future<Output = CallResult> + 'a {
        let prepared = self.prepare(cfg);
        let (sink, registry) = match registry {
            Some(registry) => {
                let follow = registry.register(&prepared.handle(), prepared.config());
                (Some(tee(sink, follow)), Some(registry))
            }
            None => (sink, None),
        };
        // `map`, not an async block awaiting it: that would hold the call's future twice.
        prepared.run(sink).map(move |result| {
            if let Some(registry) = registry {
                registry.finished(&result.report);
            }
            result
        })
    }
}

/// One sink that hands every event to `first` (when there is one) and then to `second`.
pub fn tee(first: Option<EventSink>, second: EventSink) -> EventSink {
    match first {
        None => second,
        Some(first) => Arc::new(move |e: &CallEvent| {
            first(e);
            second(e);
        }),
    }
}
