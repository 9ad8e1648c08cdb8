"""Shared helpers: synthetic scenes, their empty backgrounds, and sources that misbehave."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from waterrock.tracking.frame import Frame
from waterrock.tracking.segment import DepthBackground
from waterrock.tracking.settings import TrackingSettings
from waterrock.tracking.sources import FrameSource, SourceError
from waterrock.tracking.synthetic import SyntheticScript, SyntheticSource


def empty_background(src: SyntheticSource, frames: int = 8) -> DepthBackground:
    """The background a venue learns at opening time: the same room, nobody in it."""
    empty = SyntheticSource(
        SyntheticScript((), 1.0, src.script.wall_z),
        camera=src.calibration,
        noise_mm=src.noise_mm,
        dropout=src.dropout,
        seed=src.seed + 1000,
        loop=False,
    )
    return DepthBackground.learn([empty.render(i) for i in range(frames)])


@pytest.fixture
def settings_for():
    def make(src: SyntheticSource, **kw) -> TrackingSettings:
        return TrackingSettings(touch_plane=src.script.touch_plane, **kw)

    return make


class ScriptedSource(FrameSource):
    """Replays frames of an inner source with a plan: 'raise' at frame k, 'freeze' from k for s seconds.

    Every opening continues where the last left off, as a reconnected camera does.
    """

    def __init__(
        self,
        inner: SyntheticSource,
        raise_at: set[int] = frozenset(),
        freeze_at: dict[int, float] | None = None,
        corrupt: dict[int, Frame] | None = None,
        frame_interval: float = 0.0,
    ) -> None:
        self.inner = inner
        self.calibration = inner.calibration
        self.name = "scripted"
        self.raise_at = set(raise_at)
        self.freeze_at = dict(freeze_at or {})
        self.corrupt = dict(corrupt or {})
        self.frame_interval = frame_interval
        self.next_index = 0
        self.opened = 0
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __iter__(self) -> Iterator[Frame]:
        self.opened += 1
        while True:
            with self.lock:
                i = self.next_index
                self.next_index += 1
            if i in self.raise_at:
                self.raise_at.discard(i)
                raise SourceError(f"cable pulled at frame {i}")
            if i in self.freeze_at:
                self.release.wait(self.freeze_at.pop(i))
            if self.inner.frames is not None and i >= self.inner.frames:
                self.release.wait(3600)  # a live camera never ends: it just stops
            if i in self.corrupt:
                yield self.corrupt[i]
            else:
                yield Frame(i / self.inner.fps, depth=self.inner.render(i), index=i)
            if self.frame_interval:
                threading.Event().wait(self.frame_interval)


def nearest(points: np.ndarray, p: np.ndarray) -> tuple[int, float]:
    d = np.linalg.norm(np.asarray(points)[:, [0, 2]] - p[[0, 2]], axis=1)
    return int(np.argmin(d)), float(d.min())
