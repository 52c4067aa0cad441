"""What the tests here share to judge audio and ports: G.711 μ-law decoding, Pearson
correlation and the best alignment of one clip inside another, and a free loopback port."""

import socket


def mulaw_decode(code):
    """G.711 μ-law to a 16-bit sample."""
    code = ~code & 0xFF
    sign, exponent, mantissa = code & 0x80, (code >> 4) & 7, code & 0x0F
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if sign else sample


def pearson(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    saa = sum((x - ma) ** 2 for x in a)
    sbb = sum((y - mb) ** 2 for y in b)
    return sab / (saa * sbb) ** 0.5 if saa and sbb else 0.0


def best_alignment(haystack, needle, step):
    """(correlation, offset) of `needle` against `haystack` at offsets that are multiples of
    `step`, scored on its first 0.2 s and confirmed on all of it."""
    head = needle[:1600]
    best = max(((pearson(haystack[o:o + len(head)], head), o)
                for o in range(0, len(haystack) - len(head), step)), default=(0.0, 0))
    return pearson(haystack[best[1]:best[1] + len(needle)], needle), best[1]


def free_port():
    """A loopback port free a moment ago (for a process that takes its port as a flag)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
