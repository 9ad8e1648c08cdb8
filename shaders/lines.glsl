// Trails as thick, anti-aliased, tapered polylines: one quad per segment. Segment `seg` of
// trail `slot` joins the positions of age seg and seg+1 (age 0 is the newest), read from the
// ring buffer with texelFetch; nothing here relies on glLineWidth.
//
// Two ways to put the quads on screen, from the same corners (segment_end):
// - VERTEX_SHADER / FRAGMENT_SHADER: the graphics pipeline, one instance per segment;
// - COMPUTE_SHADER: a thread per segment covers its quad's pixels itself, with the pipeline's
//   interpolation over the quad's two triangles, and adds the light to fixed-point sums with
//   atomics; RESOLVE then adds the sums to the light buffer. For GPUs whose graphics pipeline
//   is a small part of the chip (an H100: docs/rendering.md). Additive light only: "over"
//   depends on the order of the lines.

// Coverage from the distance to the nearer edge (x: signed px across the line, y: half width):
// 1 inside, a one-pixel ramp at the border.
float coverage(vec2 edge) { return clamp(edge.y + 0.5 - abs(edge.x), 0.0, 1.0); }

#if defined COMPUTE_SHADER
// The light of each pixel, added up by the rasterizing pass and resolved by the RESOLVE pass.
layout(r32ui, binding = 0) uniform uimage2D sum_r;
layout(r32ui, binding = 1) uniform uimage2D sum_g;
layout(r32ui, binding = 2) uniform uimage2D sum_b;
const float ONE = 65536.0;    // the sums' fixed point
#endif

#if defined VERTEX_SHADER || (defined COMPUTE_SHADER && !defined RESOLVE)

uniform sampler2D history;   // xyz: position (m), w: speed (m/s); ring entry r fills rows [r*rows, (r+1)*rows)
uniform sampler2D packing;   // rho/rho0 at each position, laid out as history
uniform isampler2D lengths;  // valid positions per trail, 0 when the particle is gone
uniform isampler2D live;     // k -> the slot of the k-th drawn trail with a segment (TrailBuffer._find_live)
uniform int trail_length;    // K
uniform int drawn_length;    // L <= K: only the newest L positions of a trail are drawn
uniform int head;            // ring entry of the newest positions
uniform int rows;            // texture rows per ring entry
uniform mat4 flatten;
uniform float depth_bias;    // clip z per w: water sliding on the rock lies on, not under, its surface
uniform vec2 viewport;       // pixels
uniform float px;            // pixels per pixel of a 1080-line picture

uniform vec3 color_slow;
uniform vec3 color_fast;
uniform vec2 width;          // slow, fast: px at 1080 lines
uniform vec2 opacity;        // slow, fast
uniform float fast_speed;
uniform float taper;
uniform float fade;
uniform float age_time[120]; // s from the newest positions back to those of each age (K <= 120: MAX_TRAIL_LENGTH)
// [render.look]: the water's state on the line (render/settings.py LookSettings)
uniform vec2 look_packing;   // (opacity, width): how far loose water dims and thins
uniform vec2 packed_range;   // rho/rho0: loose .. packed
uniform vec2 look_impact;    // (opacity, width): x (1 + this) at a full impact
uniform float impact_accel;  // m/s^2 of a full impact
uniform vec3 impact_color;
uniform float impact_tint;

ivec2 texel_at(int slot, int age) {
    int w = textureSize(lengths, 0).x;
    int ring = (head - age + trail_length) % trail_length;
    return ivec2(slot % w, ring * rows + slot / w);
}

vec4 sample_at(int slot, int age) { return texelFetch(history, texel_at(slot, age), 0); }

vec4 to_clip(vec3 p) { return flatten * vec4(p, 1.0); }
vec2 to_screen(vec4 clip) { return (clip.xy / clip.w * 0.5 + 0.5) * viewport; }

vec2 normal_of(vec2 from, vec2 to, vec2 fallback) {
    vec2 d = to - from;
    float n = length(d);
    return n > 1e-4 ? vec2(-d.y, d.x) / n : fallback;
}

int live_slot(int k) {
    int w = textureSize(live, 0).x;
    return texelFetch(live, ivec2(k % w, k / w), 0).r;
}

int trail_positions(int slot) {
    int w = textureSize(lengths, 0).x;
    return texelFetch(lengths, ivec2(slot % w, slot / w), 0).r;
}

// One end of a segment's quad: its corners are centre -/+ offset (side -1, +1).
struct End {
    vec4 clip;         // the end's clip position
    vec2 centre;       // pixels
    vec2 offset;       // pixels, to the side +1 corner
    float extent;      // px from the centre line to a corner, along the line's normal
    float half_width;  // px
    vec4 color;        // rgb, opacity
};

// End `end` (0: nearer the head, 1: nearer the tail) of segment `seg` of a trail of n
// positions; false behind a perspective camera.
bool segment_end(int slot, int seg, int n, int end, out End e) {
    vec4 a = sample_at(slot, seg);
    vec4 b = sample_at(slot, seg + 1);
    vec4 ca = to_clip(a.xyz), cb = to_clip(b.xyz);
    if (ca.w <= 0.0 || cb.w <= 0.0) return false;
    vec2 sa = to_screen(ca), sb = to_screen(cb);
    vec2 n_seg = normal_of(sa, sb, vec2(0.0, 1.0));
    // Miter with the neighbouring segment at this end, so consecutive quads share their corner
    // vertices exactly: a smooth polyline with neither gaps nor doubled light at the joints.
    // The same three positions give the water's acceleration there: the impact.
    vec2 n_nb = n_seg;
    float impact = 0.0;
    bool joint = end == 0 ? seg > 0 : seg + 2 < n;
    if (joint) {
        int at_age = seg + end;
        vec3 nb = sample_at(slot, end == 0 ? seg - 1 : seg + 2).xyz;
        vec3 newer = end == 0 ? nb : a.xyz, at = end == 0 ? a.xyz : b.xyz, older = end == 0 ? b.xyz : nb;
        vec2 s_nb = to_screen(to_clip(nb));
        n_nb = end == 0 ? normal_of(s_nb, sa, n_seg) : normal_of(sb, s_nb, n_seg);
        // the change of velocity over the intervals the positions were taken at: free fall and
        // sliding are about 1 g, striking the rock many
        float dt_new = age_time[at_age] - age_time[at_age - 1], dt_old = age_time[at_age + 1] - age_time[at_age];
        if (dt_new > 0.0 && dt_old > 0.0) {
            vec3 accel = ((newer - at) / dt_new - (at - older) / dt_old) / (0.5 * (dt_new + dt_old));
            impact = smoothstep(0.25 * impact_accel, impact_accel, length(accel));
        }
    }
    vec2 miter = n_seg + n_nb;
    miter = dot(miter, miter) > 1e-6 ? normalize(miter) : n_seg;
    float stretch = 1.0 / max(dot(miter, n_seg), 0.5);  // sharp turns: cap the miter at 2x

    int age = seg + end;
    int segs = drawn_length - 1;
    vec4 p = end == 0 ? a : b;
    float fast = clamp(p.w / fast_speed, 0.0, 1.0);
    float along = float(age) / float(segs);  // 0 at the head, 1 at the oldest drawn tail
    float loose = 1.0 - smoothstep(packed_range.x, packed_range.y, texelFetch(packing, texel_at(slot, age), 0).r);
    vec2 state = (1.0 - look_packing * loose) * (1.0 + look_impact * impact);  // (opacity, width)
    float half_width = 0.5 * mix(width.x, width.y, fast) * (1.0 - taper * along) * state.y * px;
    float alpha = min(mix(opacity.x, opacity.y, fast) * (1.0 - fade * along) * state.x, 1.0);
    // Below a pixel, draw a pixel-wide line with its coverage in the opacity: no shimmer.
    if (half_width < 0.5) {
        alpha *= 2.0 * half_width;
        half_width = 0.5;
    }
    e.extent = half_width + 1.0;  // one pixel of margin for the anti-aliased edge
    e.clip = end == 0 ? ca : cb;
    e.centre = end == 0 ? sa : sb;
    e.offset = miter * stretch * e.extent;
    e.half_width = half_width;
    e.color = vec4(mix(mix(color_slow, color_fast, fast), impact_color, impact_tint * impact), alpha);
    return true;
}

#endif

#if defined VERTEX_SHADER

noperspective out vec2 v_edge;  // x: signed px across the line, y: half width in px
out vec4 v_color;

void main() {
    int segs = drawn_length - 1;
    int k = gl_InstanceID / segs;
    int seg = gl_InstanceID - k * segs;
    int slot = live_slot(k);
    int n = min(trail_positions(slot), drawn_length);
    int end = gl_VertexID >> 1;          // 0: the end nearer the head, 1: the end nearer the tail
    float side = float(gl_VertexID & 1) * 2.0 - 1.0;
    End e;
    v_edge = vec2(0.0);
    v_color = vec4(0.0);
    // beyond the trail's history, or behind the camera: a point outside the clip volume draws nothing
    if (seg + 1 >= n || !segment_end(slot, seg, n, end, e)) {
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
        return;
    }
    vec2 s = e.centre + side * e.offset;
    gl_Position = vec4((s / viewport * 2.0 - 1.0) * e.clip.w, e.clip.z + depth_bias * e.clip.w, e.clip.w);
    v_edge = vec2(side * e.extent, e.half_width);
    v_color = e.color;
}

#elif defined FRAGMENT_SHADER

noperspective in vec2 v_edge;
in vec4 v_color;
out vec4 f_color;

void main() {
    float a = v_color.a * coverage(v_edge);
    if (a <= 0.0) discard;
    f_color = vec4(v_color.rgb * a, a);  // premultiplied: works for additive and for over
}

#elif defined COMPUTE_SHADER && !defined RESOLVE

layout(local_size_x = 64) in;
uniform int segments;         // L-1 per drawn trail with a segment
uniform bool occlude;         // test against the rock's depth
uniform sampler2D rock_depth;

// Twice the signed area of (a, b, p): positive when p lies left of a -> b.
float edge_fn(vec2 a, vec2 b, vec2 p) { return (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x); }

void main() {
    int i = int(gl_GlobalInvocationID.x);
    if (i >= segments) return;
    int segs = drawn_length - 1;
    int k = i / segs;
    int seg = i - k * segs;
    int slot = live_slot(k);
    int n = min(trail_positions(slot), drawn_length);
    End e0, e1;
    if (seg + 1 >= n || !segment_end(slot, seg, n, 0, e0) || !segment_end(slot, seg, n, 1, e1)) return;
    // The quad's corners in the vertex shader's order (vertex id = 2 end + side), and what the
    // pipeline interpolates across them.
    vec2 P[4] = vec2[4](e0.centre - e0.offset, e0.centre + e0.offset, e1.centre - e1.offset, e1.centre + e1.offset);
    vec2 E[4] = vec2[4](vec2(-e0.extent, e0.half_width), vec2(e0.extent, e0.half_width),
                        vec2(-e1.extent, e1.half_width), vec2(e1.extent, e1.half_width));
    float z0 = (e0.clip.z / e0.clip.w + depth_bias) * 0.5 + 0.5, z1 = (e1.clip.z / e1.clip.w + depth_bias) * 0.5 + 0.5;
    float Z[4] = float[4](z0, z0, z1, z1);
    vec4 C[4] = vec4[4](e0.color, e0.color, e1.color, e1.color);
    // the strip's two triangles, (0, 1, 2) and (2, 1, 3)
    ivec3 T[2] = ivec3[2](ivec3(0, 1, 2), ivec3(2, 1, 3));
    float area[2] = float[2](edge_fn(P[0], P[1], P[2]), edge_fn(P[2], P[1], P[3]));
    // Walk the quad column by column along its longer side, each column cut to the span between
    // the quad's edges there: about the quad's own pixels, not its bounding box's.
    vec2 lo = min(min(P[0], P[1]), min(P[2], P[3])), hi = max(max(P[0], P[1]), max(P[2], P[3]));
    int u_axis = hi.y - lo.y > hi.x - lo.x ? 1 : 0, v_axis = 1 - u_axis;
    ivec2 last = ivec2(viewport) - 1;
    int u0 = max(int(ceil(lo[u_axis] - 0.5)), 0), u1 = min(int(floor(hi[u_axis] - 0.5)), last[u_axis]);
    ivec4 around = ivec4(0, 1, 3, 2);  // the corners in order round the quad
    for (int u = u0; u <= u1; ++u) {
        float uc = float(u) + 0.5;
        float v_lo = 1e30, v_hi = -1e30;
        for (int k = 0; k < 4; ++k) {
            vec2 a = P[around[k]], b = P[around[(k + 1) & 3]];
            if (uc < min(a[u_axis], b[u_axis]) || uc > max(a[u_axis], b[u_axis])) continue;
            float du = b[u_axis] - a[u_axis];
            if (abs(du) > 1e-6) {  // where the edge crosses the column
                float v = a[v_axis] + (uc - a[u_axis]) / du * (b[v_axis] - a[v_axis]);
                v_lo = min(v_lo, v);
                v_hi = max(v_hi, v);
            } else {  // an edge along the column: all of it
                v_lo = min(v_lo, min(a[v_axis], b[v_axis]));
                v_hi = max(v_hi, max(a[v_axis], b[v_axis]));
            }
        }
        int w0 = max(int(ceil(v_lo - 0.5)), 0), w1 = min(int(floor(v_hi - 0.5)), last[v_axis]);
        for (int w = w0; w <= w1; ++w) {
            ivec2 pix = u_axis == 0 ? ivec2(u, w) : ivec2(w, u);
            vec2 q = vec2(pix) + 0.5;
            for (int t = 0; t < 2; ++t) {
                if (abs(area[t]) < 1e-8) continue;
                vec2 a = P[T[t].x], b = P[T[t].y], c = P[T[t].z];
                vec3 l = vec3(edge_fn(b, c, q), edge_fn(c, a, q), edge_fn(a, b, q)) / area[t];
                // inside; a pixel on the diagonal the triangles share (b, c of the first; a, b of
                // the second) goes to the first only
                if (any(lessThan(l, vec3(0.0))) || (t == 1 && l.z == 0.0)) continue;
                float depth = dot(l, vec3(Z[T[t].x], Z[T[t].y], Z[T[t].z]));
                if (depth < 0.0 || depth > 1.0) break;  // clipped, as the pipeline clips
                if (occlude && depth >= texelFetch(rock_depth, pix, 0).r) break;
                vec2 edge = l.x * E[T[t].x] + l.y * E[T[t].y] + l.z * E[T[t].z];
                vec4 color = l.x * C[T[t].x] + l.y * C[T[t].y] + l.z * C[T[t].z];
                float alpha = color.a * coverage(edge);
                if (alpha > 0.0) {
                    uvec3 add = uvec3(color.rgb * alpha * ONE + 0.5);
                    imageAtomicAdd(sum_r, pix, add.r);
                    imageAtomicAdd(sum_g, pix, add.g);
                    imageAtomicAdd(sum_b, pix, add.b);
                }
                break;  // a pixel of the first triangle is not the second's
            }
        }
    }
}

#elif defined COMPUTE_SHADER && defined RESOLVE

layout(local_size_x = 16, local_size_y = 16) in;
layout(rgba16f, binding = 3) uniform image2D light;

void main() {  // the sums onto the light buffer, as additive blending adds them; then cleared
    ivec2 q = ivec2(gl_GlobalInvocationID.xy);
    if (any(greaterThanEqual(q, imageSize(light)))) return;
    vec3 add = vec3(imageLoad(sum_r, q).r, imageLoad(sum_g, q).r, imageLoad(sum_b, q).r) / ONE;
    if (any(greaterThan(add, vec3(0.0)))) imageStore(light, q, imageLoad(light, q) + vec4(add, 0.0));
    imageStore(sum_r, q, uvec4(0u));
    imageStore(sum_g, q, uvec4(0u));
    imageStore(sum_b, q, uvec4(0u));
}

#endif
