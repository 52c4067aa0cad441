#!/usr/bin/env python3
"""Capacity bench: how many real-time Media Streams `dialtone load --stream` sustains, judged by
the shared harness's lean sink (../shared/bench-peers, WORKLOAD.md), beside the harness's own
generators (floorgen: the machine's ceiling; loadgen: a plain tokio-tungstenite generator) and,
where they are installed, the peer tools -- all in one invocation, then the ratios.

Generator `dialtone-calls` places FULL calls (`dialtone load --webhook`: webhook, TwiML,
`<Connect><Stream>`, paced media, hang-up) whose stream goes to the same sink, so the same
criterion judges full calls beside the lean `--stream` path ("dialtone") and floorgen. Its
webhook is a tiny TwiML server this script runs on 127.0.0.1 (answering every call with
`<Connect><Stream url="$URL"/>`); each caller says D s of silence and hangs up (`--tail 0s`),
so exactly D x 50 frames go out, as in WORKLOAD.md.

    bench/capacity.py                          # dialtone, floorgen, loadgen; ladder 500 1000 1500 2000
    bench/capacity.py --gens dialtone-calls dialtone floorgen --ladder 250 500 1000
    bench/capacity.py --ladder 1000 1500 1750 --d 20
    bench/capacity.py --gens dialtone --peers asyncio k6-deadline   # peers need the harness's setup
    bench/capacity.py --interleave 1000 1250 1500   # generators alternate at each N, 3 rounds

Verdict per step (the harness's criterion): >= 99.9 % of frames delivered and sink lateness
p99 <= 5 ms. As in the harness's search.py: climb the ladder until a step fails (or, when the
first step fails, go down by halves to --min-n); a borderline step (all frames in, p99 in
[3, 15] ms) is run 3 times and judged on the median p99; then one midpoint between the last pass
and the first failure. Each run waits for the machine to be quiet
(no compiler running) first, because other work on a 2-core box moves p99 by 10x.
Rows go to target/bench/results.jsonl; the harness keeps per-run details in its runs/ folder.
A read-only harness (shared/ is laid without write bits) is copied to $BENCH_PEERS_COPY
(default /tmp/dialtone-bench-peers) first, since run.sh writes its runs/ and the sink's build
beside itself.
"""
import argparse
import http.server
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import wave
from xml.sax.saxutils import quoteattr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_DIR = os.environ.get("BENCH_PEERS", os.path.join(os.path.dirname(REPO), "shared", "bench-peers"))
OUT = os.path.join(REPO, "target", "bench")
# Where `cargo build --release` below puts it (CARGO_TARGET_DIR, if set, moves it).
DIALTONE = os.environ.get("DIALTONE", os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")),
                                                   "release", "dialtone"))
# Max sustained N of the peers in the harness's README (D=20, same criterion), used when a
# peer is not installed here and so cannot be run in this invocation.
README_PEERS = {"k6-deadline": 50, "artillery": 175, "locust": 100, "asyncio": 175}
LABEL = {"dialtone": "dialtone load --stream", "dialtone-calls": "dialtone full calls (load --webhook)"}
# Set by main(): the TwiML server's port and the silent caller WAV of each D, for dialtone-calls.
TWIML = {"port": None}


class TwimlHandler(http.server.BaseHTTPRequestHandler):
    """Answers every voice webhook with `<Connect><Stream url="?stream=…"/>`: the harness's sink
    URL ($URL) travels in the webhook's query, so the peer command stays the harness's contract."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("stream", [""])[0]
        if not url.startswith("ws://127.0.0.1:"):  # loopback only, like the sink
            self.send_error(400, "stream must be ws://127.0.0.1:PORT/...")
            return
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(url)}/>'
                f'</Connect></Response>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_twiml():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TwimlHandler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    TWIML["port"] = srv.server_address[1]


def silence_wav(d):
    """D s of 8 kHz PCM silence (dialtone sends it as the μ-law silence the harness's peers send)."""
    path = os.path.join(OUT, f"silence-{d}s.wav")
    if not os.path.exists(path):
        os.makedirs(OUT, exist_ok=True)
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(b"\0\0" * 8000 * d)
    return path


def writable_peers():
    """The harness, somewhere run.sh may write (its runs/ folder, the sink's target/)."""
    global PEERS_DIR
    # The write bit, not os.access: root may write anywhere, but a harness laid read-only is
    # not ours to fill with runs.
    if os.stat(PEERS_DIR).st_mode & 0o200:
        return
    copy = os.environ.get("BENCH_PEERS_COPY", "/tmp/dialtone-bench-peers")
    shutil.copytree(PEERS_DIR, copy, dirs_exist_ok=True, ignore=shutil.ignore_patterns("runs", "target", ".venv"))
    for root, dirs, files in os.walk(copy):
        for n in dirs + files:
            os.chmod(os.path.join(root, n), os.stat(os.path.join(root, n)).st_mode | 0o200)
    os.chmod(copy, os.stat(copy).st_mode | 0o200)
    PEERS_DIR = copy


def dialtone_version():
    return "dialtone " + subprocess.run([DIALTONE, "--version"], capture_output=True, text=True).stdout.strip()


def gen_env(gen, run_out, d):
    sink_bin = os.path.join(PEERS_DIR, "sink", "target", "release")
    if gen == "dialtone-calls":
        # Full calls: the app is the TwiML server above plus the sink; nothing answers with
        # audio, so the no-audio bound is off. Calls start at i x RAMP / N, as the harness's.
        hook = f'http://127.0.0.1:{TWIML["port"]}/voice?stream=$URL'
        return {"PEER_CMD": f'{DIALTONE} load --webhook "{hook}" --calls "$N" --concurrency "$N" '
                            f'--ramp "$RAMP" --audio {silence_wav(d)} --tail 0s --no-audio-timeout 0 '
                            f'--progress off --quiet --out {run_out}',
                "PEER_VERSION": dialtone_version() + " (full calls)"}
    if gen == "dialtone":
        return {"PEER_CMD": f'{DIALTONE} load --stream "$URL" --streams "$N" --seconds "$D" '
                            f'--ramp "$RAMP" --progress off --quiet --out {run_out}',
                "PEER_VERSION": dialtone_version()}
    if gen == "floorgen":
        return {"PEER_CMD": f"THREADS=2 {sink_bin}/floorgen"}
    if gen == "loadgen":
        return {"PEER_CMD": f"{sink_bin}/loadgen"}
    return {}


def busy():
    """Other heavy work on the box: compilers, test runners."""
    out = subprocess.run(["ps", "-eo", "pcpu,comm"], capture_output=True, text=True).stdout
    heavy = 0.0
    for line in out.splitlines()[1:]:
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].strip() in ("rustc", "cc1", "ld", "node", "npm", "python3.11", "cargo", "pytest"):
            heavy += float(parts[0])
    return heavy > 20.0


def wait_quiet(limit_s):
    start = time.time()
    quiet_for = 0
    while time.time() - start < limit_s:
        if busy():
            quiet_for = 0
        else:
            quiet_for += 1
            if quiet_for >= 3:
                return True
        time.sleep(1)
    return False


def run(gen, n, d, args):
    os.makedirs(OUT, exist_ok=True)
    quiet = wait_quiet(args.quiet_wait)
    run_out = os.path.join(OUT, "runs", f"{gen}-N{n}-{int(time.time())}")
    env = dict(os.environ, SINK="lean", RAMP=str(args.ramp), RESULTS=os.path.join(OUT, "results.jsonl"),
               **gen_env(gen, run_out, d))
    peer = gen if gen in README_PEERS or gen.startswith(("k6", "artillery")) else f"cmd:{gen}"
    p = subprocess.run([os.path.join(PEERS_DIR, "run.sh"), peer, str(n), str(d)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    row = json.loads(p.stdout.strip().splitlines()[-1])
    t = open(os.path.join(PEERS_DIR, row["run_dir"], "time.txt")).read()
    user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
    frames = max(row["frames_received"], 1)
    row.update(gen=gen, quiet=quiet, user_us_per_frame=user * 1e6 / frames, sys_us_per_frame=sys_ * 1e6 / frames)
    own = os.path.join(run_out, "summary.json")
    if os.path.exists(own):
        s = json.load(open(own))
        series = {p["t_s"]: p for p in s["series"]}
        at_ramp_end = series.get(int(args.ramp) + 1, {}).get("active_calls")
        row["dialtone"] = {"verdict": s["generator"]["verdict"], "reasons": s["generator"]["reasons"],
                           "ok": s["outcomes"].get("ok", 0), "ws_connect": s["metrics"].get("ws_connect"),
                           "active_at_ramp_end_plus_1s": at_ramp_end,
                           "own_lateness_p99_ms": s["metrics"].get("frame_lateness", {}).get("p99_ms"),
                           "own_user_us_per_frame": s["generator"].get("user_us_per_frame"),
                           "own_max_rss_kib": s["generator"].get("max_rss_kib")}
    print(f"  {gen:10s} N={n:<5d} delivered={row['delivered_pct']:.3f}% p50={row['lateness_p50_ms']} "
          f"p99={row['lateness_p99_ms']} max={row['lateness_max_ms']} cpu={row['peer_steady_cpu_pct']}% "
          f"rss={row['peer_max_rss_mb']}MB user={row['user_us_per_frame']:.2f}us/f sys={row['sys_us_per_frame']:.2f}us/f "
          f"sink={row['sink_cpu_pct']}% pass={row['pass']}{'' if quiet else ' (machine busy)'}", flush=True)
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def verdict(gen, n, d, args):
    rows = [run(gen, n, d, args)]
    r = rows[0]
    p99 = r["lateness_p99_ms"]
    if args.repeats > 1 and r["delivered_pct"] >= 99.9 and p99 is not None and 3 <= p99 <= 15:
        rows += [run(gen, n, d, args) for _ in range(args.repeats - 1)]
    p99s = sorted(x["lateness_p99_ms"] if x["lateness_p99_ms"] is not None else 1e18 for x in rows)
    med = statistics.median(p99s)
    deliv = statistics.median(x["delivered_pct"] for x in rows)
    rep = sorted(rows, key=lambda x: x["lateness_p99_ms"] if x["lateness_p99_ms"] is not None else 1e18)[len(rows) // 2]
    return deliv >= 99.9 and med <= 5.0, rep, rows


def search(gen, d, args):
    print(f"[capacity] {gen}", flush=True)
    best, best_row, fail, tried = 0, None, None, {}
    for n in args.ladder:
        ok, row, rows = verdict(gen, n, d, args)
        tried[n] = rows
        if ok:
            best, best_row = n, row
        else:
            fail = n
            break
    # As the harness's search.py: when the first step fails, go down by halves to a pass.
    n = fail // 2 if fail and not best else 0
    while n >= args.min_n:
        ok, row, rows = verdict(gen, n, d, args)
        tried[n] = rows
        if ok:
            best, best_row = n, row
            break
        fail, n = n, n // 2
    if best and fail and not args.no_refine:
        mid = (best + fail) // 2
        if mid not in tried and mid > best:
            ok, row, rows = verdict(gen, mid, d, args)
            tried[mid] = rows
            if ok:
                best, best_row = mid, row
    print(f"[capacity] {gen}: max sustained N = {best} (first failing N: {fail})", flush=True)
    return {"gen": gen, "n": best, "fail": fail, "row": best_row, "tried": tried}


def interleave(a):
    rows = {}
    for rnd in range(a.repeats):
        for n in a.interleave:
            for g in a.gens + a.peers:
                print(f"[round {rnd + 1}]", end="")
                rows.setdefault((g, n), []).append(run(g, n, a.d, a))
    print()
    print(f"## Interleaved (D={a.d} s, RAMP={a.ramp:g} s, lean sink, {a.repeats} rounds; verdict: median p99 <= 5 ms, all delivered)")
    print()
    print("| generator | " + " | ".join(f"N={n}: p99 ms (runs)" for n in a.interleave)
          + " | max sustained N | user µs/frame @max | sys µs/frame @max | RSS per call @max (KiB) |")
    print("|---|" + "---|" * (len(a.interleave) + 4))
    best = {}
    for g in a.gens + a.peers:
        cells, top = [], None
        for n in a.interleave:
            rs = rows[(g, n)]
            p99s = [r["lateness_p99_ms"] if r["lateness_p99_ms"] is not None else float("inf") for r in rs]
            med = statistics.median(p99s)
            ok = med <= 5.0 and statistics.median(r["delivered_pct"] for r in rs) >= 99.9
            cells.append(" / ".join(f"{p:.1f}" for p in p99s) + (" ✓" if ok else " ✗"))
            if ok:
                top = n
        best[g] = top
        if top:
            rs = rows[(g, top)]
            med = lambda k: statistics.median(r[k] for r in rs)
            tail = f"{top} | {med('user_us_per_frame'):.2f} | {med('sys_us_per_frame'):.2f} | {med('peer_max_rss_mb') * 1024 / top:.1f}"
        else:
            tail = "0 | – | – | –"
        print(f"| {LABEL.get(g, g)} | " + " | ".join(cells) + f" | {tail} |")
    if best.get("dialtone"):
        print()
        for g, n in best.items():
            if g != "dialtone" and n:
                print(f"- dialtone ÷ {g}: N {best['dialtone'] / n:.2f}x")
        p = max(README_PEERS, key=README_PEERS.get)
        print(f"- dialtone ÷ best peer from the harness README ({p}, {README_PEERS[p]}): {best['dialtone'] / README_PEERS[p]:.1f}x")
    if best.get("dialtone-calls"):
        print()
        for g, n in best.items():
            if g != "dialtone-calls" and n:
                print(f"- full calls (dialtone-calls) ÷ {LABEL.get(g, g)}: N {best['dialtone-calls'] / n:.2f}x")
    print()
    print("dialtone's own summary, median of the rounds (user CPU per frame sent, peak RSS per call, own lateness p99):")
    for g in ("dialtone-calls", "dialtone"):
        for n in a.interleave if g in a.gens else []:
            own = [r["dialtone"] for r in rows[(g, n)] if r.get("dialtone", {}).get("own_max_rss_kib") is not None]
            if own:
                med = lambda k: statistics.median(o[k] for o in own)
                print(f"- {LABEL.get(g, g)} @N={n}: ok {med('ok'):g} of {n}; user {med('own_user_us_per_frame'):.2f} µs/frame; "
                      f"peak RSS {med('own_max_rss_kib') / n:.1f} KiB per call; own lateness p99 "
                      f"{med('own_lateness_p99_ms'):.1f} ms")
    json.dump({f"{g}@{n}": v for (g, n), v in rows.items()}, open(os.path.join(OUT, "interleave.json"), "w"),
              indent=1, default=str)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--ramp", type=float, default=5)
    ap.add_argument("--ladder", type=int, nargs="+", default=[500, 1000, 1500, 2000])
    ap.add_argument("--gens", nargs="+", default=["dialtone", "floorgen", "loadgen"])
    ap.add_argument("--peers", nargs="*", default=[], help="peer tools to run too (installed in the harness)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-refine", action="store_true")
    ap.add_argument("--min-n", type=int, default=25, help="lowest N tried when the ladder's first step fails")
    ap.add_argument("--quiet-wait", type=float, default=300, help="seconds to wait for a quiet machine before a run")
    ap.add_argument("--mem-n", type=int, default=1000, help="N of the memory-per-call check")
    ap.add_argument("--no-build", action="store_true", help="use $DIALTONE (or target/release/dialtone) as is")
    ap.add_argument("--interleave", type=int, nargs="+", metavar="N",
                    help="instead of the ladder: at each N run the generators one after the other, "
                         "--repeats rounds, so machine noise hits them alike; verdict = median p99")
    a = ap.parse_args()

    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "dialtone"], cwd=REPO, check=True)
    writable_peers()
    if not os.path.exists(os.path.join(PEERS_DIR, "sink", "target", "release", "sink-lean")):
        # run.sh looks in sink/target, wherever CARGO_TARGET_DIR points.
        subprocess.run(["cargo", "build", "--release", "-q", "--target-dir", "target"],
                       cwd=os.path.join(PEERS_DIR, "sink"), check=True)
    if "dialtone-calls" in a.gens:
        start_twiml()

    if a.interleave:
        return interleave(a)
    results = [search(g, a.d, a) for g in a.gens + a.peers]
    os.makedirs(OUT, exist_ok=True)
    json.dump(results, open(os.path.join(OUT, "capacity.json"), "w"), indent=1, default=str)
    by = {r["gen"]: r for r in results}
    # Memory per call and connection at the end of the ramp, at N = mem_n.
    mem = {}
    for g in a.gens:
        rows = by[g]["tried"].get(a.mem_n) or [run(g, a.mem_n, a.d, a)]
        r = rows[0]
        mem[g] = (r["peer_max_rss_mb"] * 1024 / a.mem_n, r)

    print()
    print(f"## Capacity on this machine (D={a.d} s, RAMP={a.ramp:g} s, lean sink; pass: >= 99.9 % delivered, p99 <= 5 ms)")
    print()
    print(f"| generator | max sustained N | sink p99 @N (ms) | CPU % @N (of 200) | user µs/frame | sys µs/frame | RSS per call @{a.mem_n} (KiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        row = r["row"]
        m = mem.get(r["gen"])
        if row:
            print(f"| {LABEL.get(r['gen'], r['gen'])} | {r['n']} | {row['lateness_p99_ms']} | {row['peer_steady_cpu_pct']} | "
                  f"{row['user_us_per_frame']:.2f} | {row['sys_us_per_frame']:.2f} | {m[0]:.1f} |" if m else
                  f"| {LABEL.get(r['gen'], r['gen'])} | {r['n']} | {row['lateness_p99_ms']} | {row['peer_steady_cpu_pct']} | "
                  f"{row['user_us_per_frame']:.2f} | {row['sys_us_per_frame']:.2f} | – |")
        else:
            print(f"| {LABEL.get(r['gen'], r['gen'])} | 0 (first failing N {r['fail']}) | – | – | – | – | – |")
    dt = by.get("dialtone")
    if dt and dt["n"]:
        print()
        print("Ratios (dialtone ÷ other, same invocation unless marked):")
        for g in ("floorgen", "loadgen"):
            if g in by and by[g]["n"]:
                o = by[g]
                print(f"- vs {g}: N {dt['n'] / o['n']:.2f}x; user µs/frame {dt['row']['user_us_per_frame'] / o['row']['user_us_per_frame']:.2f}x"
                      f"; RSS per call {mem['dialtone'][0] / mem[g][0]:.2f}x" if g in mem else "")
        peers = {p: by[p]["n"] for p in a.peers if by[p]["n"]}
        source = "this run"
        if not peers:
            peers, source = README_PEERS, "the harness README's measurements (peers not run here)"
        best_peer = max(peers, key=peers.get)
        print(f"- vs the best peer ({best_peer}, N={peers[best_peer]}, {source}): {dt['n'] / peers[best_peer]:.1f}x")
        r = mem["dialtone"][1].get("dialtone", {})
        print(f"- at N={a.mem_n}: {r.get('ok')} of {a.mem_n} streams completed ok; active at ramp end + 1 s: "
              f"{r.get('active_at_ramp_end_plus_1s')}; ws_connect max {((r.get('ws_connect') or {}).get('max_ms'))} ms; "
              f"dialtone's own verdict: {r.get('verdict')} (own lateness p99 {r.get('own_lateness_p99_ms')} ms)")
    full_calls_ratios(by, mem, a)
    json.dump(results, open(os.path.join(OUT, "capacity.json"), "w"), indent=1, default=str)


def full_calls_ratios(by, mem, a):
    """Full calls beside the lean path and the machine's ceiling, then each dialtone path's cost
    from its own summary (user CPU per frame sent, peak RSS per call)."""
    fc = by.get("dialtone-calls")
    if not fc:
        return
    print()
    print("Full calls (dialtone-calls) ÷ other, same invocation (each at its own max sustained N):")
    for g in ("dialtone", "floorgen", "loadgen"):
        o = by.get(g)
        if not o:
            continue
        parts = []
        if fc["n"] and o["n"]:
            parts.append(f"N {fc['n'] / o['n']:.2f}x ({fc['n']} vs {o['n']})")
        if fc["row"] and o["row"]:
            parts.append(f"user µs/frame {fc['row']['user_us_per_frame'] / o['row']['user_us_per_frame']:.2f}x")
        if g in mem and "dialtone-calls" in mem:
            f, m = mem["dialtone-calls"], mem[g]
            parts.append(f"@N={a.mem_n}: user µs/frame {f[1]['user_us_per_frame'] / m[1]['user_us_per_frame']:.2f}x "
                         f"({f[1]['user_us_per_frame']:.2f} vs {m[1]['user_us_per_frame']:.2f}), "
                         f"RSS per call {f[0] / m[0]:.2f}x ({f[0]:.1f} vs {m[0]:.1f} KiB)")
        print(f"- vs {LABEL.get(g, g)}: " + ("; ".join(parts) or "–"))
    print()
    print("dialtone's own summary (generator line / summary.json: user CPU per frame sent, peak RSS per call):")
    for g in ("dialtone-calls", "dialtone"):
        if g not in by:
            continue
        rows = [(f"max sustained N={by[g]['n']}", by[g]["n"], by[g]["row"])] if by[g]["row"] else []
        if g in mem and by[g]["n"] != a.mem_n:
            rows.append((f"N={a.mem_n}", a.mem_n, mem[g][1]))
        for where, n, row in rows:
            own = (row or {}).get("dialtone")
            if not own or own.get("own_max_rss_kib") is None:
                continue
            print(f"- {LABEL.get(g, g)} @{where}: {own['ok']} of {n} ok; user {own['own_user_us_per_frame']} µs/frame; "
                  f"peak RSS {own['own_max_rss_kib'] / 1024:.1f} MiB = {own['own_max_rss_kib'] / n:.1f} KiB per call; "
                  f"own lateness p99 {own['own_lateness_p99_ms']} ms; verdict {own['verdict']}")


if __name__ == "__main__":
    sys.exit(main())
