//! The target of a run, set up once for `dialtone call` and `dialtone load`: the app's voice
//! URL (the embedded reference app on a loopback port when the user gave none), the
//! milestone endpoint the app reports to, and the capture file every call writes; after each
//! call, its milestones put into its report with a warning for each one that fits nowhere.
//!
//! The CLI fills a [`TargetOptions`] from its flags, [`Target::start`]s it, hands
//! [`Target::url`], [`Target::capture`] and [`Target::milestones`] to the calls, and calls
//! [`Target::finish`] when they are done.

mod milestones;
mod target;

pub use milestones::put_milestones;
pub use target::{CaptureOutcome, EmbeddedApp, SetupError, Target, TargetOptions};
