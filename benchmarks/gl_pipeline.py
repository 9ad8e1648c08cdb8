"""What a GPU's GL pipeline itself can do, apart from waterrock's renderer: the blended fill rate,
the rate of small triangles and of GL_LINES, and the same blend written by a compute shader, the
baseline measured in the same run (a compute shader may use parts of the chip that the graphics
pipeline cannot: on an H100 only two TPCs run vertex and pixel shaders). docs/rendering.md has
an H100's figures.

    python benchmarks/gl_pipeline.py [--resolution 1920 1080] [--json out.json]
"""

import argparse
import json
import time

import moderngl
import numpy as np

VERTEX = "#version 430\nin vec2 p; void main() { gl_Position = vec4(p, 0.0, 1.0); }"
FRAGMENT = "#version 430\nout vec4 c; void main() { c = vec4(0.5, 0.5, 0.25, 0.1); }"
COMPUTE = """#version 430
layout(local_size_x = 16, local_size_y = 16) in;
layout(rgba8, binding = 0) uniform image2D img;
void main() {  // the fixed-function blend of FRAGMENT, SRC_ALPHA / ONE_MINUS_SRC_ALPHA
    ivec2 p = ivec2(gl_GlobalInvocationID.xy);
    imageStore(img, p, imageLoad(img, p) * 0.9 + vec4(0.5, 0.5, 0.25, 0.1) * 0.1);
}"""


def _median_ms(ctx, draw, repeat: int, batch: int) -> float:
    """ms per draw: the median over ``repeat`` samples of ``batch`` draws back to back, fenced
    once, so that the fence's latency does not swamp a short draw."""
    draw()
    ctx.finish()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(batch):
            draw()
        ctx.finish()
        times.append(1e3 * (time.perf_counter() - t) / batch)
    return float(np.median(times))


def run(width: int, height: int, n: int = 1_000_000, repeat: int = 7, batch: int = 10, ctx=None) -> dict:
    """The four figures; ``ctx`` a moderngl context of GL 4.3 or later (a standalone EGL one by
    default, released after)."""
    own = ctx is None
    if own:
        ctx = moderngl.create_standalone_context(backend="egl", require=430)
    if ctx.version_code < 430:
        raise RuntimeError(f"the probe needs OpenGL 4.3 (compute shaders); this context has {ctx.version_code}")
    fbo = ctx.simple_framebuffer((width, height))
    fbo.use()
    ctx.enable(moderngl.BLEND)
    ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA  # as COMPUTE does it
    prog = ctx.program(vertex_shader=VERTEX, fragment_shader=FRAGMENT)
    at = np.random.default_rng(1).uniform(-1, 1, (n, 2)).astype("f4")
    px = np.array([2.0 / width, 2.0 / height], "f4")
    corners = 2 * px * np.array([[0, 0], [1, 0], [0, 1], [1, 0], [1, 1], [0, 1]], "f4")
    ends = np.stack([at, at + px * np.float32([20, 5])], 1)  # about 20 pixels long
    buffers = [ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], "f4")),
               ctx.buffer((at[:, None] + corners).reshape(-1, 2)), ctx.buffer(ends.reshape(-1, 2))]
    quad, small, lines = (ctx.simple_vertex_array(prog, b, "p") for b in buffers)
    image = ctx.texture((width, height), 4)
    image.bind_to_image(0, read=True, write=True)
    blend = ctx.compute_shader(COMPUTE)
    pixels = width * height
    fill = _median_ms(ctx, lambda: quad.render(moderngl.TRIANGLE_STRIP), repeat, batch)
    tris = _median_ms(ctx, lambda: small.render(moderngl.TRIANGLES), repeat, batch)
    gl_lines = _median_ms(ctx, lambda: lines.render(moderngl.LINES), repeat, batch)
    compute = _median_ms(ctx, lambda: blend.run((width + 15) // 16, (height + 15) // 16), repeat, batch)
    out = {
        "renderer": ctx.info["GL_RENDERER"], "resolution": [width, height], "segments": n,
        "fill_ms": fill, "fill_gpixel_s": pixels / fill / 1e6,
        "triangles": 2 * n, "triangles_ms": tris, "gtriangles_s": 2 * n / tris / 1e6,
        "gl_lines_ms": gl_lines,
        "compute_blend_ms": compute, "compute_gpixel_s": pixels / compute / 1e6,
        "compute_over_fill": fill / compute,
    }
    for thing in (fbo, quad, small, lines, *buffers, image, blend, prog):
        thing.release()
    ctx.disable(moderngl.BLEND)
    if own:
        ctx.release()
    return out


def table(r: dict) -> str:
    w, h = r["resolution"]
    rows = [
        ("blended full-screen quad", r["fill_ms"], f"{r['fill_gpixel_s']:.1f} Gpixel/s"),
        ("the same blend, compute", r["compute_blend_ms"],
         f"{r['compute_gpixel_s']:.1f} Gpixel/s ({r['compute_over_fill']:.1f}x the fill rate)"),
        (f"{r['triangles']:,} triangles of 2 px", r["triangles_ms"],
         f"{r['gtriangles_s']:.2f} Gtriangles/s (a segment's quad is two)"),
        (f"{r['segments']:,} GL_LINES of 20 px", r["gl_lines_ms"], ""),
    ]
    return "\n".join([f"GL pipeline, {r['renderer']}, {w}x{h}, median ms"]
                     + [f"  {name:<30}{ms:9.3f}  {rate}" for name, ms, rate in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, nargs=2, default=(1920, 1080), metavar=("W", "H"))
    ap.add_argument("--segments", type=int, default=1_000_000)
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    r = run(*args.resolution, n=args.segments)
    print(table(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
