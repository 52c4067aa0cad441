//! Results out: summary.json validates against the committed schema.json, the `.hlog` is
//! readable by the standard interval-log reader, and merging shard directories adds
//! histograms (not averages).

use std::time::{Duration, SystemTime};

use dialtone_load::output::{SUMMARY_FILE, merge_dirs, write_dir};
use dialtone_load::summary::WorkloadInfo;
use dialtone_load::tally::{RunInfo, RunTally, WorkerInterval};
use dialtone_load::{Finished, Metric, Shard};

fn shard_run(shard: Shard, values: &[u64]) -> Finished {
    let mut c = RunTally::new(SystemTime::now());
    c.set_scheduled(values.len() as u64);
    let mut w = WorkerInterval::default();
    for &v in values {
        w.rec.record(Metric::FrameLateness, v);
        w.rec.record(Metric::WsConnect, v * 10);
    }
    w.started = values.len() as u64;
    w.finished = values.len() as u64;
    w.frames = values.len() as u64;
    w.outcomes
        .insert(dialtone_call::Outcome::Ok, values.len() as u64);
    c.add_interval(&w);
    c.tick(Duration::from_secs(1), 0, None);
    c.finish(RunInfo {
        mode: "stream".into(),
        target: "ws://127.0.0.1:1/stream".into(),
        shard,
        workload: WorkloadInfo {
            concurrency: 4,
            ..WorkloadInfo::default()
        },
        interrupted: false,
        lateness_bound: Duration::from_millis(10),
        cores: 2,
    })
}

#[test]
fn summary_json_matches_the_committed_schema() {
    let schema: serde_json::Value = serde_json::from_str(include_str!("../schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = shard_run(Shard::default(), &[100, 2000, 30_000]);
    write_dir(dir.path(), &f.summary, &f.totals, &f.hlog).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(SUMMARY_FILE)).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "the report has inline plots");
    assert!(
        !html.contains("http://") || !html.contains("<script src"),
        "no network"
    );
}

#[test]
fn merging_shards_adds_histograms() {
    let a = shard_run(Shard { index: 0, count: 2 }, &[100, 200, 300]);
    let b = shard_run(Shard { index: 1, count: 2 }, &[40_000, 50_000]);
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dir(da.path(), &a.summary, &a.totals, &a.hlog).unwrap();
    write_dir(db.path(), &b.summary, &b.totals, &b.hlog).unwrap();
    let (m, totals, _) = merge_dirs(&[da.path(), db.path()]).unwrap();
    assert_eq!(m.calls.finished, 5);
    assert_eq!(m.outcomes["ok"], 5);
    assert_eq!(m.shards.len(), 2);
    assert_eq!(totals.get(Metric::FrameLateness).len(), 5);
    let lat = &m.metrics["frame_lateness"];
    // The merged p50 is a real sample (300 µs), not a mean of the shards' medians.
    assert!((lat.p50_ms - 0.3).abs() < 0.01, "{lat:?}");
    assert!((lat.max_ms - 50.0).abs() < 0.1, "{lat:?}");
    assert_eq!(m.metrics["ws_connect"].count, 5);
}

#[test]
fn merging_keeps_a_shards_partial_last_second() {
    // A run that ends 50 ms into its second second: its last point has the same t_s (1) as
    // the full second before it. Merging must add both, not keep one.
    let partial = |shard| {
        let mut c = RunTally::new(SystemTime::now());
        c.set_scheduled(5);
        let interval = |n: u64| {
            let mut w = WorkerInterval {
                started: n,
                finished: n,
                frames: 10 * n,
                ..WorkerInterval::default()
            };
            w.outcomes.insert(dialtone_call::Outcome::Ok, n);
            w.rec.record(Metric::FrameLateness, 100);
            w
        };
        c.add_interval(&interval(3));
        c.tick(Duration::from_secs(1), 3, None);
        c.add_interval(&interval(2));
        c.tick(Duration::from_millis(1050), 0, None);
        c.finish(RunInfo {
            mode: "stream".into(),
            target: "ws://127.0.0.1:1/stream".into(),
            shard,
            workload: WorkloadInfo::default(),
            interrupted: false,
            lateness_bound: Duration::from_millis(10),
            cores: 2,
        })
    };
    let a = partial(Shard { index: 0, count: 2 });
    let b = partial(Shard { index: 1, count: 2 });
    let t1: Vec<_> = a.summary.series.iter().filter(|p| p.t_s == 1).collect();
    assert_eq!(t1.len(), 2, "the shard itself has two points at t=1");
    assert_eq!(t1[1].cpu_pct, None, "no CPU figure over 50 ms");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_dir(da.path(), &a.summary, &a.totals, &a.hlog).unwrap();
    write_dir(db.path(), &b.summary, &b.totals, &b.hlog).unwrap();
    let (m, _, _) = merge_dirs(&[da.path(), db.path()]).unwrap();
    let t1: Vec<_> = m.series.iter().filter(|p| p.t_s == 1).collect();
    assert_eq!(t1.len(), 1);
    assert_eq!(t1[0].started, 10, "{:?}", m.series);
    assert_eq!(t1[0].frames, 100);
    assert_eq!(t1[0].active_calls, 6, "each shard's larger figure, summed");
    assert_eq!(m.calls.started, 10);
}

#[test]
fn merge_refuses_an_endless_input_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(SUMMARY_FILE)).unwrap();
    let e = merge_dirs(&[dir.path()]).unwrap_err().to_string();
    assert!(e.contains("not a file dialtone load wrote"), "{e}");
}
