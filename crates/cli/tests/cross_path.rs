//! The same faulty app against both load paths: full calls (`dialtone load --webhook`) and
//! bare streams (`dialtone load --stream`), call by call. The reference bot runs as its own
//! process with `--misbehave`, which picks each call's fault from its `CallSid`; both paths
//! name call *i* of a run seeded *S* alike, so call *i* meets the same fault on either path,
//! and each path's `calls.jsonl` gives its stream-level class. They must agree for every call.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use dialtone_bot::{Behaviour, Misbehave};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dialtone");

/// The stream-level faults, a share each; a fifth of the calls behave.
const SPEC: &str =
    "refuse_upgrade=0.16,abrupt_close=0.16,never_read=0.16,mute=0.16,huge_frame=0.16";
const CALLS: u64 = 12;
/// Seconds of media per bare stream: an unread socket fills its buffers in ~9 s and is
/// given up 5 s later, so a stalled stream is noticed well before its end.
const STREAM_SECONDS: &str = "24";
/// The full call's caller stays this long after its audio (6.7 s), for the same reason.
const CALL_TAIL: &str = "20s";

/// A `dialtone bot` process, killed when dropped.
struct Bot {
    child: Child,
    base: String,
}

impl Bot {
    fn start() -> Bot {
        let mut child = Command::new(BIN)
            .args(["bot", "--listen", "127.0.0.1:0", "--misbehave", SPEC])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        // Keep draining so the bot's later output never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let base = first.trim().rsplit(' ').next().unwrap().to_string();
        assert!(base.starts_with("http://127.0.0.1:"), "{first}");
        Bot { child, base }
    }

    fn stream_url(&self, query: &str) -> String {
        format!("{}/media{query}", self.base.replacen("http://", "ws://", 1))
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `dialtone load` with `args` and `--out dir`; returns each call's class by index.
fn load(args: Vec<String>, dir: &Path) -> Vec<String> {
    let out = Command::new(BIN)
        .arg("load")
        .args(&args)
        .args(["--progress", "off", "--out"])
        .arg(dir)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(dir.join("calls.jsonl")).unwrap_or_else(|e| {
        panic!(
            "{args:?}: no calls.jsonl ({e}), exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut classes = vec![String::new(); CALLS as usize];
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let i = v["index"].as_u64().unwrap() as usize;
        classes[i] = v["class"].as_str().unwrap().to_string();
    }
    assert!(
        classes.iter().all(|c| !c.is_empty()),
        "{args:?}: a call is missing from calls.jsonl:\n{text}"
    );
    classes
}

/// What each stream-level fault must give on both paths. `mute` is `ok`: a bare stream has
/// no no-audio bound, so the full calls run with `--no-audio-timeout 0` too.
fn expected(fault: Option<Behaviour>) -> &'static str {
    match fault {
        Some(Behaviour::RefuseUpgrade) => "stream_connect 31920",
        Some(Behaviour::AbruptClose) => "stream 31903",
        Some(Behaviour::NeverRead) => "stream stalled",
        Some(Behaviour::HugeFrame) => "stream 31924",
        Some(Behaviour::Mute) | None => "ok",
        Some(other) => panic!("{other} is not in the spec"),
    }
}

#[test]
fn both_paths_give_every_call_the_same_stream_class() {
    let misbehave: Misbehave = SPEC.parse().unwrap();
    let faults_for = |seed: u64| -> Vec<Option<Behaviour>> {
        (0..CALLS)
            .map(|i| misbehave.for_call(&dialtone_load::plan::call_sid(seed, i)))
            .collect()
    };
    // The first seed whose calls meet every fault and include a clean one.
    let wanted = [
        Some(Behaviour::RefuseUpgrade),
        Some(Behaviour::AbruptClose),
        Some(Behaviour::NeverRead),
        Some(Behaviour::Mute),
        Some(Behaviour::HugeFrame),
        None,
    ];
    let seed = (1..1000)
        .find(|&s| {
            let f = faults_for(s);
            wanted.iter().all(|w| f.contains(w))
        })
        .expect("some seed covers every fault");
    let faults = faults_for(seed);
    let audio = concat!(env!("CARGO_MANIFEST_DIR"), "/../../audio/hello.wav");
    let (full_bot, stream_bot) = (Bot::start(), Bot::start());
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let common = |v: &[&str]| -> Vec<String> {
        let n = CALLS.to_string();
        let s = seed.to_string();
        let mut a: Vec<String> = v.iter().map(ToString::to_string).collect();
        a.extend(["--calls", &n, "--seed", &s, "--audio", audio].map(String::from));
        a
    };
    let full_args = common(&[
        "--webhook",
        &format!("{}/voice", full_bot.base),
        "--concurrency",
        "12",
        "--tail",
        CALL_TAIL,
        "--max-duration",
        "45s",
        "--no-audio-timeout",
        "0",
    ]);
    let lean_args = common(&[
        "--stream",
        &stream_bot.stream_url(""),
        "--seconds",
        STREAM_SECONDS,
    ]);
    // Bare streams have no webhook to mark the refused upgrade's URL: the test marks it, as
    // the bot's webhook does for the calls it refuses.
    let refused_args = common(&[
        "--stream",
        &stream_bot.stream_url("?misbehave=refuse_upgrade"),
        "--seconds",
        "1",
    ]);
    // The three runs at once: the test takes as long as the longest (~30 s).
    let (full, lean, refused) = std::thread::scope(|s| {
        let full = s.spawn(|| load(full_args, dirs[0].path()));
        let lean = s.spawn(|| load(lean_args, dirs[1].path()));
        let refused = s.spawn(|| load(refused_args, dirs[2].path()));
        (
            full.join().unwrap(),
            lean.join().unwrap(),
            refused.join().unwrap(),
        )
    });
    let mut table = String::new();
    let mut differ = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let stream = if *fault == Some(Behaviour::RefuseUpgrade) {
            &refused[i]
        } else {
            &lean[i]
        };
        let fault_name = fault.map_or("none".to_string(), |b| b.to_string());
        table.push_str(&format!(
            "  call {i:>2}  {fault_name:<15} full: {:<22} stream: {stream}\n",
            full[i]
        ));
        if full[i] != *stream || full[i] != expected(*fault) {
            differ.push(i);
        }
    }
    assert!(
        differ.is_empty(),
        "seed {seed}: calls {differ:?} differ (want {:?}):\n{table}",
        differ
            .iter()
            .map(|&i| expected(faults[i]))
            .collect::<Vec<_>>()
    );
    eprintln!("seed {seed}:\n{table}");
}
