"""benchmarks/gl_pipeline.py: its compute-shader baseline does the fragment path's work, and it runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

PROBE = Path(__file__).resolve().parents[2] / "benchmarks" / "gl_pipeline.py"


def _probe():
    spec = importlib.util.spec_from_file_location("gl_pipeline", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.gl
def test_the_compute_baseline_blends_as_the_fixed_function_blend_does(gl_ctx):
    import moderngl

    probe, ctx = _probe(), gl_ctx
    if ctx.version_code < 430:
        pytest.skip(f"compute shaders need OpenGL 4.3; this context has {ctx.version_code}")
    size, start = (8, 4), (0.2, 0.6, 0.9, 1.0)
    fbo = ctx.simple_framebuffer(size)
    fbo.use()
    fbo.clear(*start)
    prog = ctx.program(vertex_shader=probe.VERTEX, fragment_shader=probe.FRAGMENT)
    buf = ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], "f4"))
    vao = ctx.simple_vertex_array(prog, buf, "p")
    ctx.enable(moderngl.BLEND)
    ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
    for _ in range(3):
        vao.render(moderngl.TRIANGLE_STRIP)
    drawn = np.frombuffer(fbo.read(components=4), np.uint8).reshape(size[1], size[0], 4)

    image = ctx.texture(size, 4, data=(np.array(start) * 255).round().astype(np.uint8).tobytes() * (size[0] * size[1]))
    image.bind_to_image(0, read=True, write=True)
    blend = ctx.compute_shader(probe.COMPUTE)
    for _ in range(3):
        blend.run(1, 1)
        ctx.memory_barrier()
    computed = np.frombuffer(image.read(), np.uint8).reshape(size[1], size[0], 4)
    for thing in (vao, buf, prog, fbo, image, blend):
        thing.release()
    ctx.disable(moderngl.BLEND)
    # the colour channels (the fixed-function blend also blends alpha by the same factors)
    assert np.abs(drawn[..., :3].astype(int) - computed[..., :3].astype(int)).max() <= 1
    assert np.abs(drawn[..., :3].astype(int) - (np.array(start[:3]) * 255).round().astype(int)).max() > 10


@pytest.mark.gl
def test_the_probe_reports_its_four_figures(gl_ctx):
    probe = _probe()
    if gl_ctx.version_code < 430:
        pytest.skip(f"compute shaders need OpenGL 4.3; this context has {gl_ctx.version_code}")
    r = probe.run(64, 48, n=500, repeat=1, batch=1, ctx=gl_ctx)
    assert r["triangles"] == 1000 and r["resolution"] == [64, 48]
    for key in ("fill_ms", "triangles_ms", "gl_lines_ms", "compute_blend_ms"):
        assert np.isfinite(r[key]) and r[key] > 0, key
    assert "GL pipeline" in probe.table(r)


@pytest.mark.gl
def test_the_compute_rasterizer_draws_the_quads_picture(gl_ctx):
    """Segments at many angles and lengths, apart from each other: the compute shader's picture is
    the pipeline's, up to the rounding of coverage and the pixel-centre rule at a quad's ends."""
    import moderngl

    probe = _probe()
    if gl_ctx.version_code < 430:
        pytest.skip(f"compute shaders need OpenGL 4.3; this context has {gl_ctx.version_code}")
    size = (160, 120)
    angles = np.linspace(0.0, 2 * np.pi, 12, endpoint=False) + 0.1
    centres = np.array([(20 + 40 * (k % 4), 20 + 40 * (k // 4)) for k in range(12)], float)
    lengths = np.linspace(4.0, 24.0, 12)
    half = 0.5 * lengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)
    ends = np.concatenate([centres - half, centres + half], 1).astype("f4")
    seg = probe.Segments(gl_ctx, ends, size)
    fbo = gl_ctx.simple_framebuffer(size)
    fbo.use()
    fbo.clear(0.0, 0.0, 0.0, 0.0)
    seg.draw_quads()
    gl_ctx.disable(moderngl.BLEND)
    quads = np.frombuffer(fbo.read(components=4), np.uint8).reshape(size[1], size[0], 4)[..., :3].astype(int)
    seg.draw_compute()
    gl_ctx.finish()
    computed = np.frombuffer(seg.picture.read(), np.uint8).reshape(size[1], size[0], 4)[..., :3].astype(int)
    seg.release()
    fbo.release()
    assert quads.sum() > 0
    assert abs(computed.sum() - quads.sum()) < 0.03 * quads.sum()
    differ = np.abs(computed - quads).max(axis=-1)
    assert np.count_nonzero(differ > 2) < 0.05 * np.count_nonzero(quads.max(axis=-1))
