"""`waterrock render`: a scene's water, drawn offscreen into a video file or a folder of PNGs.

The snapshots come from a producer (the solver stepping the scene, a recording, a test
generator); this module only draws them, one snapshot per output frame. Video is written
through PyAV, with the encoders of the ffmpeg that its wheel bundles (:data:`CODECS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import trimesh

from waterrock.progress import progress
from waterrock.render.renderer import Renderer
from waterrock.render.rock import placed_rock
from waterrock.render.target import OffscreenTarget
from waterrock.scene import Scene, load_scene
from waterrock.snapshots import ParticleSnapshot

MAX_RESOLUTION = (3840, 2160)


@dataclass(frozen=True)
class VideoCodec:
    """How a ``--codec`` is written: ffmpeg's encoder and its options, the pixel format the
    encoder is given, the containers that hold it, and what its width and height must divide by."""

    encoder: str
    pix_fmt: str
    suffixes: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)
    multiple: tuple[int, int] = (1, 1)


CODECS = {
    # what players and browsers play; 4:2:0 halves the colour both ways, so the size is even
    "h264": VideoCodec("libx264", "yuv420p", (".mp4", ".mov", ".mkv"), multiple=(2, 2)),
    # the editing master: 10-bit 4:2:2, intra-frame, ProRes 422 HQ
    "prores": VideoCodec("prores_ks", "yuv422p10le", (".mov", ".mkv"), {"profile": "hq"}),
    # for media servers: HAP frames are DXT textures (hap: DXT1, hapq: YCoCg DXT5, the better
    # colour), handed to the GPU as they are; the encoder takes RGBA in 4x4 blocks (hapenc.c)
    "hap": VideoCodec("hap", "rgba", (".mov",), {"format": "hap"}, (4, 4)),
    "hapq": VideoCodec("hap", "rgba", (".mov",), {"format": "hap_q"}, (4, 4)),
    # what .avi held before PyAV (cv2's MJPG): `waterrock track --out preview.avi` still writes it
    "mjpeg": VideoCodec("mjpeg", "yuvj420p", (".avi",)),
}
DEFAULT_CODEC = {".mp4": "h264", ".mkv": "h264", ".mov": "prores", ".avi": "mjpeg"}
VIDEO_SUFFIXES = tuple(DEFAULT_CODEC)


def has_encoder(name: str) -> bool:
    """Whether PyAV's bundled ffmpeg has the encoder ``name``: ffmpeg builds hap only with
    libsnappy, and libx264 is an external library too, so a wheel may lack either."""
    try:
        av.codec.Codec(name, "w")
    except ValueError:  # av's UnknownCodecError
        return False
    return True


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


def video_codec(out: str | Path, codec: str | None = None, size: tuple[int, int] | None = None) -> str | None:
    """The codec that ``out`` (passed by :func:`check_output`) is written with: ``codec``, or its
    suffix's default; None for a folder of PNGs. A codec that is unknown, not for ``out``'s
    container, missing from PyAV's ffmpeg, or unable to hold ``size`` (w, h) is a ValueError in
    one line naming what was given and what would do."""
    out = Path(out)
    suffix = out.suffix.lower()
    if codec is not None and codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; give one of {', '.join(CODECS)}")
    if suffix not in DEFAULT_CODEC:
        if codec is not None:
            raise ValueError(f"{out} is a folder, for PNG frames; codec {codec} needs a video file "
                             f"({' or '.join(CODECS[codec].suffixes)})")
        return None
    name = DEFAULT_CODEC[suffix] if codec is None else codec
    c = CODECS[name]
    if suffix not in c.suffixes:
        raise ValueError(f"codec {name} goes in a {' or '.join(c.suffixes)} file, not {out.name}")
    if not has_encoder(c.encoder):
        needs = " (ffmpeg has it only when built with libsnappy)" if c.encoder == "hap" else ""
        raise ValueError(f"codec {name}: this PyAV build's ffmpeg has no {c.encoder} encoder{needs}; give another "
                         f"codec, or install a PyAV built with it")
    (mx, my), (w, h) = c.multiple, size or (0, 0)
    if w % mx or h % my:
        raise ValueError(f"codec {name} needs a width that divides by {mx} and a height by {my}, not {w}x{h}")
    return name


class FrameSink:
    """Frames to a video file (by suffix, or ``codec``: :func:`video_codec`) or a folder of PNGs
    (see :func:`check_output`)."""

    def __init__(self, out: Path, size: tuple[int, int], fps: float, codec: str | None = None):
        check_output(out)
        self.out, self.count = Path(out), 0
        self.codec = video_codec(self.out, codec, size)
        self.video = self.stream = None
        if self.codec is None:
            self.out.mkdir(parents=True, exist_ok=True)
            return
        c = CODECS[self.codec]
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.video = av.open(str(self.out), "w")
        try:  # 29.97 is 2997/100: the container's time base holds a fraction, not a float
            self.stream = self.video.add_stream(c.encoder, rate=Fraction(fps).limit_denominator(1001),
                                                options=dict(c.options))
            self.stream.width, self.stream.height = size
            self.stream.pix_fmt = c.pix_fmt
        except Exception:
            self.video.close()
            raise

    def write(self, rgb: np.ndarray) -> None:
        if self.video is not None:
            # PyAV converts the RGB frame to the encoder's pixel format (libswscale), in C
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            self.video.mux(self.stream.encode(frame))
        elif not cv2.imwrite(str(self.out / f"frame_{self.count:06d}.png"), np.ascontiguousarray(rgb[:, :, ::-1])):
            raise RuntimeError(f"{self.out}: cannot write PNG frames")
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            try:
                if self.count:  # the frames the encoder still holds (none opened it: nothing to flush)
                    self.video.mux(self.stream.encode(None))
            finally:
                self.video.close()


def render_command(
    scene_path: str | Path,
    seconds: float,
    out: str | Path,
    resolution: tuple[int, int] | None = None,
    fps: float = 60.0,
    *,
    snapshots: Iterable[ParticleSnapshot],
    codec: str | None = None,
) -> int:
    """Draw ``seconds * fps`` snapshots of the scene into ``out`` (a video file, or a folder of
    PNGs); ``resolution`` (w, h) up to 4K, default the scene's [render] resolution; ``codec`` one
    of :data:`CODECS`, default by the file's suffix. Stops early if the producer runs dry.
    Returns the number of frames written."""
    scene = load_scene(scene_path)
    size = tuple(int(v) for v in (resolution or scene.render.resolution))
    if not (16 <= size[0] <= MAX_RESOLUTION[0] and 16 <= size[1] <= MAX_RESOLUTION[1]):
        raise ValueError(f"resolution {size} outside 16x16 .. {MAX_RESOLUTION[0]}x{MAX_RESOLUTION[1]}")
    frames = round(seconds * fps)
    rock, budget = scene_rock(scene), scene.fluid.max_particles
    sink = FrameSink(Path(out), size, fps, codec)
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
