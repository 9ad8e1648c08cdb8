"""Renderer benchmark: ms per frame for N line segments (trails x (K-1)) at a given resolution.

Each size is timed three ways, every frame fenced with ``ctx.finish()`` so the GPU's work is
counted, not just the commands' submission:

  upload   moving every trail on by one position (host id -> slot gather + one texture row write)
  lines    upload + the full frame: instanced thick anti-aliased lines, compose to the output
  compute  the same frame with the lines rasterized by compute shaders ([render.lines]
           rasterizer = "compute"), where the context has OpenGL 4.3
  gl_lines baseline: the same segments from a static vertex buffer as 1-pixel GL_LINES

Run ``waterrock bench render [--sizes 10000 100000] [--resolution 1920x1080 3840x2160]`` (or
``python benchmarks/bench_render.py``). On CI's software renderer (llvmpipe) 1M segments take
seconds per frame; the goal on an H100 is < 4 ms (measured on lent ones at 1080p: 12.6 to 20.9 ms
through the pipeline, 7.4 to 9.5 with the compute rasterizer, see docs/rendering.md). Each
figure is the median of ``repeat`` frames after a warm-up frame, with its spread (IQR, min, max)
beside it.
"""

from __future__ import annotations

import argparse
import math
import platform

import moderngl
import numpy as np

from waterrock.bench.stats import report, time_calls
from waterrock.render.programs import load_program
from waterrock.render.projection import gl_bytes
from waterrock.render.renderer import Renderer
from waterrock.render.settings import RenderSettings
from waterrock.render.target import OffscreenTarget
from waterrock.snapshots import ParticleSnapshot

K = 32
DT = 1.0 / 60.0


class Swirl:
    """Trails on gentle curves over a 2 m high picture: deterministic, no physics, cheap."""

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.pos = rng.uniform((-1.6, -1.0, -0.5), (1.6, 1.0, 0.5), (n, 3)).astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi, n)
        speed = rng.uniform(0.5, 2.5, n)
        self.vel = np.c_[np.cos(angle) * speed, np.sin(angle) * speed, np.zeros(n)].astype(np.float32)
        self.ids = np.arange(n, dtype=np.int32)
        self.frame = 0

    def next(self) -> ParticleSnapshot:
        # Turn each velocity a little: curved trails, like water bending round the rock.
        c, s = math.cos(0.05), math.sin(0.05)
        vx, vy = self.vel[:, 0].copy(), self.vel[:, 1].copy()
        self.vel[:, 0], self.vel[:, 1] = c * vx - s * vy, s * vx + c * vy
        self.pos += self.vel * DT
        self.frame += 1
        return ParticleSnapshot(
            frame=self.frame, time=self.frame * DT, positions=self.pos, velocities=self.vel,
            ids=self.ids, recycled=np.zeros(len(self.ids), bool),
        )


def _timed(fn, ctx: moderngl.Context, repeat: int, spreads: dict | None = None, name: str = "") -> float:
    """Median ms of ``fn`` fenced by ctx.finish(), after one warm-up call; the full summary of the
    samples goes into ``spreads[name]``."""
    st = time_calls(fn, repeat, warmup=1, sync=ctx.finish)
    if spreads is not None:
        spreads[name] = st
    return st["median_ms"]


def _frame_ms(target: OffscreenTarget, trails: int, repeat: int, spreads: dict, rasterizer: str = "pipeline",
              upload: bool = False):
    """The whole frame's median ms with ``rasterizer`` (and the upload's alone, with ``upload``);
    None for the compute rasterizer where the context lacks OpenGL 4.3. Also the renderer's
    segment count and upload bytes."""
    ctx, size = target.ctx, target.size
    settings = RenderSettings(resolution=size, trails={"share": 1.0, "length": K}, lines={"rasterizer": rasterizer})
    swirl = Swirl(trails)
    with Renderer(ctx, settings, size, None, max_particles=trails) as r:
        if r.lines.rasterizer != rasterizer:
            return None, None
        for _ in range(K):  # fill every ring entry: all segments drawn
            r.update(swirl.next())
        out = {}
        if upload:
            out["upload"] = _timed(lambda: r.update(swirl.next()), ctx, repeat, spreads, "upload")
            out["drawn"] = len(r.trails.read_segments()[0])
            out["upload_bytes"] = r.trails.upload_bytes
            out["gl_lines"] = _gl_lines(target, r, repeat, spreads)

        def frame() -> None:
            r.update(swirl.next())
            r.render(target.framebuffer)

        name = "lines" if rasterizer == "pipeline" else rasterizer
        return _timed(frame, ctx, repeat, spreads, name), out


def _bench_size(target: OffscreenTarget, segments: int, repeat: int) -> dict:
    trails = math.ceil(segments / (K - 1))
    spreads: dict = {}
    lines, out = _frame_ms(target, trails, repeat, spreads, upload=True)
    compute, _ = _frame_ms(target, trails, repeat, spreads, "compute")
    return {"segments": out["drawn"], "trails": trails, "length": K, "resolution": list(target.size),
            "upload_ms": out["upload"], "lines_ms": lines, "compute_ms": compute, "gl_lines_ms": out["gl_lines"],
            "upload_bytes": out["upload_bytes"], "stats": spreads}


def _gl_lines(target: OffscreenTarget, r: Renderer, repeat: int, spreads: dict | None = None) -> float:
    """The same segments, as 1-pixel GL_LINES from a static buffer: the floor to compare with."""
    a, b, _ = r.trails.read_segments()
    ctx = target.ctx
    program = load_program(ctx, "segments")
    vbo = ctx.buffer(np.ascontiguousarray(np.stack([a, b], axis=1), dtype=np.float32))
    vao = ctx.vertex_array(program, [(vbo, "3f", "in_position")])
    program["flatten"].write(gl_bytes(r.flatten))
    program["color"].value = (0.3, 0.35, 0.4, 0.3)

    def frame() -> None:
        target.framebuffer.use()
        target.framebuffer.clear(0.0, 0.0, 0.0, 1.0)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.ONE, moderngl.ONE
        vao.render(moderngl.LINES)
        ctx.disable(moderngl.BLEND)

    try:
        return _timed(frame, ctx, repeat, spreads, "gl_lines")
    finally:
        for res in (vao, vbo, program):
            res.release()


def run_benchmark(
    sizes=(10_000, 100_000, 1_000_000), resolution: tuple[int, int] = (1920, 1080), repeat: int = 5
) -> dict:
    """Time each size of ``sizes`` (segments) at ``resolution``; results as a JSON-ready dict."""
    with OffscreenTarget(resolution) as target:
        info = target.ctx.info
        rows = [_bench_size(target, int(n), repeat) for n in sizes]
        settings = RenderSettings(resolution=tuple(resolution))
        with Renderer(target.ctx, settings, tuple(resolution), None, max_particles=1) as empty:
            # Clear and compose with no lines: the fixed cost every frame pays at this resolution.
            empty_frame = _timed(lambda: empty.render(target.framebuffer), target.ctx, repeat)
    return {
        "benchmark": "render",
        "resolution": list(resolution),
        "repeat": repeat,
        "empty_frame_ms": empty_frame,
        "renderer": info["GL_RENDERER"],
        "gl_version": info["GL_VERSION"],
        "machine": platform.machine(),
        "python": platform.python_version(),
        "results": rows,
    }


def table(report: dict) -> str:
    w, h = report["resolution"]
    lines = [f"render benchmark, {w}x{h}, {report['renderer']}; "
             f"empty frame (clear + compose) {report['empty_frame_ms']:.2f} ms"]
    heads = (("segments", 10), ("trails", 8), ("upload ms", 10), ("lines ms", 10), ("IQR", 7),
             ("compute ms", 11), ("GL_LINES ms", 12), ("upload KiB", 11))
    lines.append(" ".join(f"{name:>{width}}" for name, width in heads))
    for r in report["results"]:
        iqr = r.get("stats", {}).get("lines", {}).get("iqr_ms", float("nan"))
        compute = r.get("compute_ms")  # absent in results from before the compute rasterizer
        compute = f"{compute:>11.2f}" if compute is not None else f"{'-':>11}"
        lines.append(f"{r['segments']:>10} {r['trails']:>8} {r['upload_ms']:>10.2f} {r['lines_ms']:>10.2f} "
                     f"{iqr:>7.2f} {compute} {r['gl_lines_ms']:>12.2f} {r['upload_bytes'] / 1024:>11.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help=f"line segments per frame (trails x (K-1), K={K})")
    parser.add_argument("--resolution", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"))
    parser.add_argument("--repeat", type=int, default=5, help="timed frames per size (median reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    result = run_benchmark(args.sizes, tuple(args.resolution), args.repeat)
    return report(result, table, args.json, indent=None)


if __name__ == "__main__":
    main()
