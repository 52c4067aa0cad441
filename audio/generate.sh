#!/usr/bin/env bash
# Regenerates the committed caller audio in this directory (see README.md).
# Needs espeak-ng and sox (Debian/Ubuntu: apt-get install -y espeak-ng sox).
# Reproducible: fixed voice, rate, pitch and amplitude; sox runs in repeatable mode
# (-R) without dither (-D), so the same tool versions give byte-identical files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found" >&2; exit 1; }
done

# Fixed voice settings: US English, 160 words/min, default pitch, default amplitude.
VOICE=en-us
RATE=160
PITCH=50
AMPLITUDE=100

# speak TEXT OUT: synthesise TEXT, trim espeak's own leading/trailing silence, then
# resample to 8 kHz mono 16-bit (the telephone rate Twilio streams at) and normalise
# peaks to -3 dBFS so the level does not depend on the voice.
speak() {
    espeak-ng -v "$VOICE" -s "$RATE" -p "$PITCH" -a "$AMPLITUDE" -w "$work/raw.wav" "$1"
    sox -R -D "$work/raw.wav" -r 8000 -c 1 -b 16 "$2" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
        norm -3
}

# hello.wav: 0.3 s lead-in, first sentence, 1.5 s pause (a clear turn boundary for
# any VAD with a hangover under 1.5 s), second sentence, 0.3 s tail.
speak "Hi, I'd like to check the status of my order please." "$work/a.wav"
speak "Thanks, that's all." "$work/b.wav"
sox -R -D -n -r 8000 -c 1 -b 16 "$work/lead.wav" trim 0 0.3
sox -R -D -n -r 8000 -c 1 -b 16 "$work/pause.wav" trim 0 1.5
sox -R -D "$work/lead.wav" "$work/a.wav" "$work/pause.wav" "$work/b.wav" "$work/lead.wav" \
    "$here/hello.wav"

soxi "$here/hello.wav" >&2 || true
