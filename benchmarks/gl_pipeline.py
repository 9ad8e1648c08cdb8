"""What a GPU's GL pipeline itself can do, apart from waterrock's renderer: the blended fill rate,
the rate of small triangles and of GL_LINES, and the same blend written by a compute shader, the
baseline measured in the same run (a compute shader may use parts of the chip that the graphics
pipeline cannot: on an H100 only two TPCs run vertex and pixel shaders). Then a million thick,
anti-aliased segments added up in light both ways: as instanced quads through the pipeline, as
the renderer draws them, and rasterized by a compute shader (a thread a segment walking its
pixel columns, three atomic adds a pixel, then a pass that turns the sums into colour and clears
them). docs/rendering.md has an H100's figures.

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

SEGMENT_QUADS = """#version 430
#if defined VERTEX_SHADER
in vec4 ends;             // per instance: a.xy, b.xy in pixels
uniform vec2 viewport;
uniform float half_width;
noperspective out float v_across;
void main() {
    vec2 a = ends.xy, b = ends.zw, d = b - a;
    vec2 n = length(d) > 1e-4 ? vec2(-d.y, d.x) / length(d) : vec2(0.0, 1.0);
    float side = float(gl_VertexID & 1) * 2.0 - 1.0, e = half_width + 1.0;
    vec2 p = ((gl_VertexID >> 1) == 0 ? a : b) + n * side * e;
    gl_Position = vec4(p / viewport * 2.0 - 1.0, 0.0, 1.0);
    v_across = side * e;
}
#elif defined FRAGMENT_SHADER
uniform float half_width;
uniform vec3 color;
noperspective in float v_across;
out vec4 c;
void main() { c = vec4(color * clamp(half_width + 0.5 - abs(v_across), 0.0, 1.0), 1.0); }
#endif
"""
SEGMENT_COMPUTE = """#version 430
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Ends { vec4 ends[]; };
layout(r32ui, binding = 1) uniform uimage2D sum_r;
layout(r32ui, binding = 2) uniform uimage2D sum_g;
layout(r32ui, binding = 3) uniform uimage2D sum_b;
uniform uint n;
uniform float half_width;
uniform vec3 color;
const float ONE = 1024.0;  // fixed point of the sums
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= n) return;
    vec2 a = ends[i].xy, b = ends[i].zw, d = b - a;
    float len = length(d);
    vec2 t = len > 1e-4 ? d / len : vec2(1.0, 0.0), nrm = vec2(-t.y, t.x);
    float e = half_width + 1.0;
    bool steep = abs(d.y) > abs(d.x);  // walk the columns of the major axis
    vec2 A = steep ? a.yx : a, B = steep ? b.yx : b;
    if (A.x > B.x) { vec2 s = A; A = B; B = s; }
    float slope = (B.y - A.y) / max(B.x - A.x, 1e-4);
    float span = e * sqrt(1.0 + slope * slope);
    ivec2 size = imageSize(sum_r);
    for (int x = int(floor(A.x - e)); x <= int(ceil(B.x + e)); ++x) {
        float yc = A.y + slope * (clamp(float(x) + 0.5, A.x, B.x) - A.x);
        for (int y = int(floor(yc - span)); y <= int(ceil(yc + span)); ++y) {
            ivec2 q = steep ? ivec2(y, x) : ivec2(x, y);
            vec2 r = vec2(q) + 0.5 - a;
            float along = dot(r, t), across = abs(dot(r, nrm));
            float cover = clamp(half_width + 0.5 - across, 0.0, 1.0);
            if (along < 0.0 || along >= len || across > e || cover <= 0.0
                || any(lessThan(q, ivec2(0))) || any(greaterThanEqual(q, size))) continue;
            uvec3 add = uvec3(color * cover * ONE + 0.5);
            imageAtomicAdd(sum_r, q, add.r);
            imageAtomicAdd(sum_g, q, add.g);
            imageAtomicAdd(sum_b, q, add.b);
        }
    }
}
"""
SEGMENT_RESOLVE = """#version 430
layout(local_size_x = 16, local_size_y = 16) in;
layout(r32ui, binding = 1) uniform uimage2D sum_r;
layout(r32ui, binding = 2) uniform uimage2D sum_g;
layout(r32ui, binding = 3) uniform uimage2D sum_b;
layout(rgba8, binding = 4) uniform writeonly image2D picture;
void main() {  // the sums into colour (saturating, as additive blending does), and cleared
    ivec2 q = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(q, imageSize(picture)))) return;
    vec3 c = vec3(imageLoad(sum_r, q).r, imageLoad(sum_g, q).r, imageLoad(sum_b, q).r) / 1024.0;
    imageStore(picture, q, vec4(min(c, 1.0), 1.0));
    imageStore(sum_r, q, uvec4(0));
    imageStore(sum_g, q, uvec4(0));
    imageStore(sum_b, q, uvec4(0));
}
"""


class Segments:
    """Thick anti-aliased segments (ends in pixels, float32 (n, 4)) added up in light, drawn by the
    graphics pipeline (``draw_quads``, into the bound framebuffer) or by compute shaders
    (``draw_compute``, into ``self.picture``)."""

    def __init__(self, ctx, ends: np.ndarray, size: tuple[int, int], half_width: float = 1.5,
                 color=(0.3, 0.5, 0.7)):
        self.ctx, self.n, self.size = ctx, len(ends), size
        self.ends = ctx.buffer(np.ascontiguousarray(ends, "f4"))
        stage = "#version 430\n#define {}_SHADER".format
        self.quads = ctx.program(vertex_shader=SEGMENT_QUADS.replace("#version 430", stage("VERTEX")),
                                 fragment_shader=SEGMENT_QUADS.replace("#version 430", stage("FRAGMENT")))
        self.quads["viewport"].value = tuple(float(v) for v in size)
        self.vao = ctx.vertex_array(self.quads, [(self.ends, "4f/i", "ends")])
        self.raster = ctx.compute_shader(SEGMENT_COMPUTE)
        self.resolve = ctx.compute_shader(SEGMENT_RESOLVE)
        for prog in (self.quads, self.raster):
            prog["half_width"].value = half_width
            prog["color"].value = tuple(color)
        self.raster["n"].value = self.n
        self.sums = [ctx.texture(size, 1, dtype="u4") for _ in range(3)]
        for s in self.sums:
            s.write(np.zeros(size[::-1], np.uint32))
        self.picture = ctx.texture(size, 4)

    def draw_quads(self) -> None:
        self.ctx.enable(moderngl.BLEND)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE
        self.vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=self.n)

    def draw_compute(self) -> None:
        self.ends.bind_to_storage_buffer(0)
        for k, s in enumerate(self.sums):
            s.bind_to_image(1 + k, read=True, write=True)
        self.picture.bind_to_image(4, read=False, write=True)
        self.raster.run((self.n + 63) // 64)
        self.ctx.memory_barrier()
        self.resolve.run((self.size[0] + 15) // 16, (self.size[1] + 15) // 16)

    def release(self) -> None:
        for thing in (self.vao, self.quads, self.raster, self.resolve, self.ends, *self.sums, self.picture):
            thing.release()


def random_segments(n: int, size: tuple[int, int], length: float = 20.0, seed: int = 1) -> np.ndarray:
    """``n`` segments ``length`` pixels long in every direction, anywhere on a picture of ``size``."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, (n, 2)) * size
    angle = rng.uniform(0, 2 * np.pi, n)
    b = a + length * np.stack([np.cos(angle), np.sin(angle)], 1)
    return np.concatenate([a, b], 1).astype("f4")


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
    segments = Segments(ctx, random_segments(n, (width, height)), (width, height))
    seg_quads = _median_ms(ctx, segments.draw_quads, repeat, batch)
    seg_compute = _median_ms(ctx, segments.draw_compute, repeat, batch)
    segments.release()
    out = {
        "renderer": ctx.info["GL_RENDERER"], "resolution": [width, height], "segments": n,
        "segments_quads_ms": seg_quads, "segments_compute_ms": seg_compute,
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
        (f"{r['segments']:,} AA segments, quads", r["segments_quads_ms"],
         "20 x 3 px, additive, as the renderer draws"),
        (f"{r['segments']:,} AA segments, compute", r["segments_compute_ms"],
         f"the same, rasterized by a compute shader ({r['segments_quads_ms'] / r['segments_compute_ms']:.1f}x)"),
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
