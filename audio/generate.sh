#!/usr/bin/env bash
# Regenerates the committed caller audio in this directory and its ground truth,
# manifest.json (see README.md). Needs espeak-ng and sox (Debian/Ubuntu:
# apt-get install -y espeak-ng sox).
# Reproducible: fixed voices, rates, pitch and amplitude; sox runs in repeatable mode
# (-R: fixed seed for its noise generator, fixed headers) without dither (-D), so the
# same tool versions give byte-identical files.
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in espeak-ng sox soxi; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found" >&2; exit 1; }
done

RATE_HZ=8000
# Every clip's edges are trimmed where its 20 ms RMS level first/last reaches this, after
# normalising peaks to -3 dBFS: the manifest's speech boundaries are these cut points.
TRIM_DBFS=-52
# Silence before and after each single utterance.
LEAD_MS=300

# Ground truth accumulated as JSON entries, written at the end.
entries=()

# samples FILE: its length in samples.
samples() { soxi -s "$1"; }

# silence MS OUT: MS milliseconds of digital zero. (The null input runs at its own rate
# until the output converts it, so the length is given in seconds, not samples.)
silence() {
    sox -R -D -n -r "$RATE_HZ" -c 1 -b 16 "$2" trim 0 "$(printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )))"
}

# clip TEXT VOICE WPM OUT: synthesise TEXT, resample to 8 kHz mono 16-bit, normalise peaks
# to -3 dBFS, trim both edges at TRIM_DBFS, and pad with zeros to a whole millisecond so
# that every boundary in the manifest is an exact integer.
clip() {
    case "$1" in *'"'*|*'\'*) echo "generate.sh: no quotes or backslashes in texts" >&2; exit 1;; esac
    espeak-ng -v "$2" -s "$3" -p 50 -a 100 -w "$work/raw.wav" "$1"
    sox -R -D "$work/raw.wav" -r "$RATE_HZ" -c 1 -b 16 "$work/clip.wav" norm -3 \
        silence 1 0.005 "${TRIM_DBFS}d" reverse silence 1 0.005 "${TRIM_DBFS}d" reverse
    local n pad
    n=$(samples "$work/clip.wav")
    pad=$(( (8 - n % 8) % 8 ))
    sox -R -D "$work/clip.wav" "$4" pad 0 "${pad}s"
}

# ms FILE: length in whole milliseconds (clips are padded to whole ms).
ms() { echo $(( ($(samples "$1") * 1000 + RATE_HZ / 2) / RATE_HZ )); }

# entry NAME FILE KIND VOICE WPM TURNS_JSON: appends one manifest entry.
entry() {
    local voice=null wpm=null
    [ -n "$4" ] && voice="\"$4\""
    [ -n "$5" ] && wpm="$5"
    entries+=("    {\"name\": \"$1\", \"file\": \"$2\", \"kind\": \"$3\", \"duration_ms\": $(ms "$here/$2"), \"voice\": $voice, \"rate_wpm\": $wpm, \"turns\": [$6]}")
}

# turn START END TEXT: one turn as JSON.
turn() { printf '{"start_ms": %d, "end_ms": %d, "text": "%s"}' "$1" "$2" "$3"; }

# utterance NAME VOICE WPM TEXT: LEAD_MS of silence, the clip, LEAD_MS of silence.
utterance() {
    clip "$4" "$2" "$3" "$work/u.wav"
    silence "$LEAD_MS" "$work/lead.wav"
    sox -R -D "$work/lead.wav" "$work/u.wav" "$work/lead.wav" "$here/utterances/$1.wav"
    entry "$1" "utterances/$1.wav" utterance "$2" "$3" \
        "$(turn "$LEAD_MS" $(( LEAD_MS + $(ms "$work/u.wav") )) "$4")"
}

# script NAME VOICE WPM NOISE LEAD_MS TEXT GAP_MS [TEXT GAP_MS ...]: a multi-turn call,
# one caller (voice), each turn followed by its gap (the last gap is the tail). NOISE
# (a file under noise/, or "") is mixed under the whole call.
script() {
    local name=$1 voice=$2 wpm=$3 noise=$4 at=$5
    shift 5
    silence "$at" "$work/s0.wav"
    local parts=("$work/s0.wav") turns="" i=0
    while [ $# -gt 0 ]; do
        i=$((i + 1))
        clip "$1" "$voice" "$wpm" "$work/t$i.wav"
        silence "$2" "$work/g$i.wav"
        parts+=("$work/t$i.wav" "$work/g$i.wav")
        local len
        len=$(ms "$work/t$i.wav")
        [ -n "$turns" ] && turns+=", "
        turns+=$(turn "$at" $(( at + len )) "$1")
        at=$(( at + len + $2 ))
        shift 2
    done
    sox -R -D "${parts[@]}" "$work/script.wav"
    if [ -n "$noise" ]; then
        # Loop the noise bed to the call's length, then add it sample by sample.
        local n
        n=$(samples "$work/script.wav")
        sox -R -D "$here/noise/$noise.wav" "$work/bed.wav" repeat 20 trim 0 "${n}s"
        sox -R -D -m -v 1 "$work/script.wav" -v 1 "$work/bed.wav" "$here/scripts/$name.wav"
    else
        cp "$work/script.wav" "$here/scripts/$name.wav"
    fi
    entry "$name" "scripts/$name.wav" script "$voice" "$wpm" "$turns"
}

mkdir -p "$here/utterances" "$here/scripts" "$here/noise"
rm -f "$here"/utterances/*.wav "$here"/scripts/*.wav "$here"/noise/*.wav

# --- hello.wav: the CLI's built-in caller. Generated exactly as it always was (trim at
# 0.1 % of full scale, normalise after), so the committed file stays byte-identical.
hello_speak() {
    espeak-ng -v en-us -s 160 -p 50 -a 100 -w "$work/raw.wav" "$1"
    sox -R -D "$work/raw.wav" -r 8000 -c 1 -b 16 "$2" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        norm -3
}
hello_a="Hi, I'd like to check the status of my order please."
hello_b="Thanks, that's all."
hello_speak "$hello_a" "$work/a.wav"
hello_speak "$hello_b" "$work/b.wav"
silence 300 "$work/lead.wav"
silence 1500 "$work/pause.wav"
sox -R -D "$work/lead.wav" "$work/a.wav" "$work/pause.wav" "$work/b.wav" "$work/lead.wav" \
    "$here/hello.wav"
# These clips are not padded to whole ms: round the boundaries to the nearest ms.
a_end=$(( 300 + $(ms "$work/a.wav") ))
b_start=$(( ( (2400 + $(samples "$work/a.wav") + 12000) * 1000 + 4000 ) / 8000 ))
b_end=$(( ( (2400 + $(samples "$work/a.wav") + 12000 + $(samples "$work/b.wav")) * 1000 + 4000 ) / 8000 ))
entry hello hello.wav script en-us 160 \
    "$(turn 300 "$a_end" "$hello_a"), $(turn "$b_start" "$b_end" "$hello_b")"

# --- Non-speech. Levels sit well below any speech threshold (speech is -30..-10 dBFS RMS).
silence 3000 "$here/noise/silence.wav"
entry silence noise/silence.wav noise "" "" ""
# Telephone line hiss: brown noise around -55 dBFS RMS.
sox -R -D -n -r "$RATE_HZ" -c 1 -b 16 "$here/noise/line_hiss.wav" synth 5 brownnoise vol 0.0012
entry line_hiss noise/line_hiss.wav noise "" "" ""
# Mains hum: 60 Hz and its odd harmonics at about -50 dBFS, plus faint hiss.
sox -R -D -n -r "$RATE_HZ" -c 1 -b 16 "$here/noise/hum.wav" \
    synth 5 sine 60 synth 5 sine mix 180 synth 5 sine mix 300 synth 5 pinknoise mix vol 0.004
entry hum noise/hum.wav noise "" "" ""

# --- Single caller utterances: a caller talking to a voice coach.
utterance greeting_hi           en-us    160 "Hi, is this the voice coach?"
utterance greeting_morning      en-gb    150 "Good morning, I'd like to start my practice session."
utterance greeting_name         en-us+f3 170 "Hello, my name is Sam and I have a presentation on Friday."
utterance complaint_cut_off     en-us    180 "The app keeps cutting me off before I finish my sentence."
utterance complaint_feedback    en-gb+m3 160 "Your last feedback did not make any sense to me."
utterance complaint_waiting     en-us+f3 150 "I have been waiting for ages and nobody called me back."
utterance question_pace         en-us    160 "Am I speaking too fast?"
utterance question_breathing    en-us+f3 160 "How should I breathe before a long speech?"
utterance question_filler       en-gb    170 "How do I stop saying um and uh all the time?"
utterance question_reschedule   en-us    190 "Can we move tomorrow's lesson to the afternoon?"
utterance question_volume       en-gb+m3 150 "Was that loud enough for the back of the room?"
utterance answer_yes            en-us    160 "Yes."
utterance answer_no             en-gb    160 "No, not really."
utterance answer_try_again      en-us+f3 180 "Okay, let me try that again."
utterance practice_opening      en-gb    140 "Ladies and gentlemen, thank you all for coming tonight."
utterance practice_tongue       en-us    170 "She sells sea shells by the sea shore."
utterance request_repeat        en-us+f3 160 "Sorry, could you repeat that?"
utterance request_hold          en-gb+m3 170 "Hold on, let me grab a pen."
utterance thanks_bye            en-us    160 "Thanks, that was really helpful, goodbye."
utterance rambling              en-us    170 "So the thing is, I have this big meeting next week, and my manager wants me to present the quarterly numbers, and I always get nervous, my voice gets shaky, I speak way too quickly, and then I forget what I wanted to say, so I was hoping you could give me some exercises, maybe something for breathing, or for slowing down, anything really."

# --- Multi-turn calls. Gaps are at least 700 ms, above a 500 ms VAD hangover, so every
# turn is a turn for a typical energy VAD.
script session en-us 160 "" 500 \
    "Hi, is this the voice coach?" 1500 \
    "I have a presentation on Friday and I am really nervous." 1500 \
    "Am I speaking too fast?" 1500 \
    "Yes." 1500 \
    "Thanks, that was really helpful, goodbye." 1000
script complaint en-gb 170 "" 500 \
    "Hello, I called yesterday about my lesson." 1200 \
    "The app keeps cutting me off before I finish my sentence." 1200 \
    "No, it happens every single time." 1200 \
    "Okay, I will try that." 1000
# The second turn starts 800 ms after the first ends: a bot with a 500 ms hangover is
# still playing its reply, so the caller talks over it (barge-in).
script barge_in en-us+f3 160 "" 500 \
    "Can you tell me how to warm up my voice?" 800 \
    "Wait, sorry, I meant before a phone call." 1500 \
    "Great, thank you." 1000
# Three turns over line hiss, as on a real phone line.
script noisy_line en-gb+m3 150 line_hiss 600 \
    "Hello, can you hear me?" 1500 \
    "The line is a bit noisy today." 1500 \
    "Let us start with the breathing exercise." 1000
# Quick back and forth, short answers, 700 ms gaps.
script rapid en-us 200 "" 400 \
    "Yes." 700 \
    "No." 700 \
    "Maybe later." 700 \
    "Okay, go on." 1000
# A long rambling turn in the middle of a call.
script rambling_call en-us+f3 170 "" 500 \
    "Hi, it is me again." 1500 \
    "So last time you told me to slow down, and I tried, I really did, but when I got up in front of everyone my heart was racing, and I rushed through the whole thing, and I am not sure what to do differently next time." 1500 \
    "Does that make sense?" 1000

# --- manifest.json
{
    echo '{'
    echo '  "sample_rate": 8000,'
    echo "  \"trim_dbfs\": $TRIM_DBFS,"
    echo '  "entries": ['
    for i in "${!entries[@]}"; do
        sep=","
        [ "$i" -eq $(( ${#entries[@]} - 1 )) ] && sep=""
        echo "${entries[$i]}$sep"
    done
    echo '  ]'
    echo '}'
} >"$here/manifest.json"

du -sh "$here" >&2
