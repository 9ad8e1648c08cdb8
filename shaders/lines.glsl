// Trails as thick, anti-aliased, tapered polylines: one instance per segment, one quad each.
// Segment `seg` of trail `slot` joins the positions of age seg and seg+1 (age 0 is the newest),
// read from the ring buffer with texelFetch; nothing here relies on glLineWidth.

#if defined VERTEX_SHADER

uniform sampler2D history;   // xyz: position (m), w: speed (m/s); ring entry r fills rows [r*rows, (r+1)*rows)
uniform isampler2D lengths;  // valid positions per trail, 0 when the particle is gone
uniform int trail_length;    // K
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

noperspective out vec2 v_edge;  // x: signed px across the line, y: half width in px
out vec4 v_color;

vec4 sample_at(int slot, int age) {
    int w = textureSize(lengths, 0).x;
    int ring = (head - age + trail_length) % trail_length;
    return texelFetch(history, ivec2(slot % w, ring * rows + slot / w), 0);
}

vec4 to_clip(vec3 p) { return flatten * vec4(p, 1.0); }
vec2 to_screen(vec4 clip) { return (clip.xy / clip.w * 0.5 + 0.5) * viewport; }

vec2 normal_of(vec2 from, vec2 to, vec2 fallback) {
    vec2 d = to - from;
    float n = length(d);
    return n > 1e-4 ? vec2(-d.y, d.x) / n : fallback;
}

void main() {
    int segs = trail_length - 1;
    int slot = gl_InstanceID / segs;
    int seg = gl_InstanceID - slot * segs;
    int w = textureSize(lengths, 0).x;
    int n = texelFetch(lengths, ivec2(slot % w, slot / w), 0).r;
    v_edge = vec2(0.0);
    v_color = vec4(0.0);
    if (seg + 1 >= n) {  // beyond the trail's history: a point outside the clip volume draws nothing
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
        return;
    }
    int end = gl_VertexID >> 1;          // 0: the end nearer the head, 1: the end nearer the tail
    float side = float(gl_VertexID & 1) * 2.0 - 1.0;
    int age = seg + end;

    vec4 a = sample_at(slot, seg);
    vec4 b = sample_at(slot, seg + 1);
    vec4 ca = to_clip(a.xyz), cb = to_clip(b.xyz);
    if (ca.w <= 0.0 || cb.w <= 0.0) {  // behind a perspective camera
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
        return;
    }
    vec2 sa = to_screen(ca), sb = to_screen(cb);
    vec2 n_seg = normal_of(sa, sb, vec2(0.0, 1.0));
    // Miter with the neighbouring segment at this end, so consecutive quads share their corner
    // vertices exactly: a smooth polyline with neither gaps nor doubled light at the joints.
    vec2 n_nb = n_seg;
    if (end == 0 && seg > 0) {
        n_nb = normal_of(to_screen(to_clip(sample_at(slot, seg - 1).xyz)), sa, n_seg);
    } else if (end == 1 && seg + 2 < n) {
        n_nb = normal_of(sb, to_screen(to_clip(sample_at(slot, seg + 2).xyz)), n_seg);
    }
    vec2 miter = n_seg + n_nb;
    miter = dot(miter, miter) > 1e-6 ? normalize(miter) : n_seg;
    float stretch = 1.0 / max(dot(miter, n_seg), 0.5);  // sharp turns: cap the miter at 2x

    vec4 p = end == 0 ? a : b;
    float fast = clamp(p.w / fast_speed, 0.0, 1.0);
    float along = float(age) / float(segs);  // 0 at the head, 1 at the oldest possible tail
    float half_width = 0.5 * mix(width.x, width.y, fast) * (1.0 - taper * along) * px;
    float alpha = mix(opacity.x, opacity.y, fast) * (1.0 - fade * along);
    // Below a pixel, draw a pixel-wide line with its coverage in the opacity: no shimmer.
    if (half_width < 0.5) {
        alpha *= 2.0 * half_width;
        half_width = 0.5;
    }
    float extent = half_width + 1.0;  // one pixel of margin for the anti-aliased edge

    vec4 c = end == 0 ? ca : cb;
    vec2 s = (end == 0 ? sa : sb) + miter * stretch * side * extent;
    gl_Position = vec4((s / viewport * 2.0 - 1.0) * c.w, c.z + depth_bias * c.w, c.w);
    v_edge = vec2(side * extent, half_width);
    v_color = vec4(mix(color_slow, color_fast, fast), alpha);
}

#elif defined FRAGMENT_SHADER

noperspective in vec2 v_edge;
in vec4 v_color;
out vec4 f_color;

void main() {
    // Coverage from the distance to the nearer edge: 1 inside, a one-pixel ramp at the border.
    float coverage = clamp(v_edge.y + 0.5 - abs(v_edge.x), 0.0, 1.0);
    float a = v_color.a * coverage;
    if (a <= 0.0) discard;
    f_color = vec4(v_color.rgb * a, a);  // premultiplied: works for additive and for over
}

#endif
