"""Synthetic visitors in real time walk on the real clock: a machine too busy to render every
frame skips frames instead of slowing the visitors down."""

from __future__ import annotations

import time

from waterrock.tracking.synthetic import SyntheticSource


def _timestamps(source: SyntheticSource, seconds: float) -> tuple[list[float], float]:
    start = time.monotonic()
    stamps = []
    for frame in source:
        stamps.append(frame.timestamp)
        if time.monotonic() - start >= seconds:
            break
    return stamps, time.monotonic() - start


def test_slow_consumer_skips_frames_but_keeps_the_clock():
    source = SyntheticSource("walk", fps=30.0, realtime=True)
    render = source.render

    def slow_render(index):  # three frame periods per frame: the machine is far behind
        time.sleep(0.1)
        return render(index)

    source.render = slow_render
    stamps, elapsed = _timestamps(source, 1.5)
    assert stamps == sorted(set(stamps))
    assert len(stamps) < 0.5 * 30 * elapsed  # frames were skipped ...
    assert abs(stamps[-1] - elapsed) < 0.25  # ... and the script time is the time that passed


def test_fast_consumer_gets_every_frame_at_its_rate():
    stamps, elapsed = _timestamps(SyntheticSource("walk", fps=30.0, realtime=True), 1.0)
    assert stamps[:5] == [i / 30.0 for i in range(5)]
    steps = [round((b - a) * 30.0) for a, b in zip(stamps, stamps[1:], strict=False)]
    assert steps.count(1) >= 0.9 * len(steps)  # one frame after another (a hiccup on a busy CI may skip one)
    assert abs(stamps[-1] - elapsed) < 0.1
