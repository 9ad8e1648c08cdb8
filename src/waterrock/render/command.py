"""`waterrock render`: a scene's water, drawn offscreen into a video file or a folder of PNGs.

The snapshots come from a producer (the solver stepping the scene, a recording, a test
generator); this module only draws them, one snapshot per output frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import trimesh

from waterrock.progress import progress
from waterrock.render.renderer import Renderer
from waterrock.render.rock import placed_rock
from waterrock.render.target import OffscreenTarget
from waterrock.scene import Scene, load_scene
from waterrock.snapshots import ParticleSnapshot

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".mkv": "mp4v"}
MAX_RESOLUTION = (3840, 2160)


def scene_rock(scene: Scene) -> trimesh.Trimesh | None:
    """The scene's rock mesh in world space, or None when the scene has no rock."""
    r = scene.rock
    if r.mesh is None:
        return None
    return placed_rock(trimesh.load(r.mesh, force="mesh"), r.translate, r.rotate_deg, r.scale)


def check_output(out: str | Path) -> None:
    """``out`` is something :class:`FrameSink` can write: a video file by its suffix, or a folder
    (a path with no suffix, or an existing folder). Anything else (out.gif, out.png) is refused
    rather than silently becoming a folder of PNGs named like a file."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix in VIDEO_SUFFIXES or out.is_dir():
        return
    if out.exists():
        raise ValueError(f"{out}: exists and is not a folder; give a video file ({', '.join(VIDEO_SUFFIXES)}) "
                         f"or a folder for PNG frames")
    if suffix:
        raise ValueError(f"{out}: cannot write {suffix} files; give a video file ({', '.join(VIDEO_SUFFIXES)}) "
                         f"or a folder (a path without a suffix) for PNG frames")


class FrameSink:
    """Frames to an mp4/avi/mov/mkv file (by suffix) or a folder of PNGs (see :func:`check_output`)."""

    def __init__(self, out: Path, size: tuple[int, int], fps: float):
        check_output(out)
        self.out, self.count = Path(out), 0
        fourcc = VIDEO_SUFFIXES.get(self.out.suffix.lower())
        self.video = None
        if fourcc is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.video = cv2.VideoWriter(str(self.out), cv2.VideoWriter_fourcc(*fourcc), fps, size)
            if not self.video.isOpened():
                raise RuntimeError(f"{self.out}: OpenCV cannot write {fourcc} video here")
        else:
            self.out.mkdir(parents=True, exist_ok=True)

    def write(self, rgb: np.ndarray) -> None:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        if self.video is not None:
            self.video.write(bgr)
        elif not cv2.imwrite(str(self.out / f"frame_{self.count:06d}.png"), bgr):
            raise RuntimeError(f"{self.out}: cannot write PNG frames")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def render_command(
    scene_path: str | Path,
    seconds: float,
    out: str | Path,
    resolution: tuple[int, int] | None = None,
    fps: float = 60.0,
    *,
    snapshots: Iterable[ParticleSnapshot],
) -> int:
    """Draw ``seconds * fps`` snapshots of the scene into ``out`` (a video file, or a folder of
    PNGs); ``resolution`` (w, h) up to 4K, default the scene's [render] resolution. Stops early
    if the producer runs dry. Returns the number of frames written."""
    scene = load_scene(scene_path)
    size = tuple(int(v) for v in (resolution or scene.render.resolution))
    if not (16 <= size[0] <= MAX_RESOLUTION[0] and 16 <= size[1] <= MAX_RESOLUTION[1]):
        raise ValueError(f"resolution {size} outside 16x16 .. {MAX_RESOLUTION[0]}x{MAX_RESOLUTION[1]}")
    frames = round(seconds * fps)
    rock, budget = scene_rock(scene), scene.fluid.max_particles
    sink = FrameSink(Path(out), size, fps)
    try:
        with (OffscreenTarget(size) as target, Renderer(target.ctx, scene.render, size, rock, budget) as r,
              progress(f"render {Path(out).name}", total=frames, unit=" frames") as advance):
            for _, snapshot in zip(range(frames), snapshots, strict=False):  # range first: no extra step
                r.update(snapshot)
                r.render(target.framebuffer)
                sink.write(r.read_pixels())
                advance(1)
    finally:
        sink.close()
    return sink.count
