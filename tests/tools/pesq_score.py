#!/usr/bin/env python3
"""PESQ of a degraded recording against its reference (ITU-T P.862 via the
`pesq` package): `pesq_score.py nb|wb REF.wav DEG.wav` prints one number.

Both files are mono 16-bit WAV at the mode's rate (8000 Hz for nb, 16000
for wb). A recording made through a call starts at an arbitrary offset, so
the degraded signal is first aligned to the reference by the peak of their
cross-correlation and cut to the reference's length; PESQ then does its own
fine alignment. Exits 2 with a message when the files are unusable.
"""
import sys
import wave

import numpy as np
from pesq import pesq


def read(path, rate):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: not mono 16-bit")
        if w.getframerate() != rate:
            sys.exit(f"{path}: {w.getframerate()} Hz, expected {rate}")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return data.astype(np.float64)


def align(ref, deg):
    n = 1
    while n < len(ref) + len(deg):
        n *= 2
    corr = np.fft.irfft(np.fft.rfft(deg, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(corr[: len(deg)]))
    out = deg[lag : lag + len(ref)]
    if len(out) < len(ref):
        out = np.concatenate([out, np.zeros(len(ref) - len(out))])
    return out, lag


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("nb", "wb"):
        sys.exit(__doc__)
    mode = sys.argv[1]
    rate = 8000 if mode == "nb" else 16000
    ref = read(sys.argv[2], rate)
    deg = read(sys.argv[3], rate)
    if len(deg) < rate // 2 or not np.any(deg):
        print("0.0")
        print(f"degraded signal empty or silent ({len(deg)} samples)", file=sys.stderr)
        return
    aligned, lag = align(ref, deg)
    score = pesq(rate, ref, aligned, mode)
    print(f"{score:.3f}")
    print(f"lag {lag} samples", file=sys.stderr)


main()
