// The picture on the rock's shape: the rock mesh as the calibrated projector sees it, each
// fragment coloured by the composed picture where the flattening puts that rock point
// (render/onrock.py). Projective texturing run backwards: the texture is indexed by the
// flattening, the geometry by the projector.

#if defined VERTEX_SHADER

uniform mat4 view;        // world -> projector frame (x right, y down, z forward), OpenCV's R, t
uniform mat4 projection;  // projector frame -> clip, the pinhole K as a frustum (Pinhole.gl_matrix)
uniform vec3 radial;      // OpenCV's k1, k2, k3
uniform vec2 tangential;  // OpenCV's p1, p2
uniform float fold;       // normalised radius where the radial distortion turns back on itself
in vec3 in_position;      // world, metres
out vec3 v_world;

// OpenCV's lens model (Brown-Conrady; Heikkila & Silven 1997) on the normalised image point.
vec2 distort(vec2 a) {
    float r2 = dot(a, a);
    float radial_gain = 1.0 + r2 * (radial.x + r2 * (radial.y + r2 * radial.z));
    float xy = a.x * a.y;
    return a * radial_gain + vec2(2.0 * tangential.x * xy + tangential.y * (r2 + 2.0 * a.x * a.x),
                                  tangential.x * (r2 + 2.0 * a.y * a.y) + 2.0 * tangential.y * xy);
}

void main() {
    v_world = in_position;
    vec4 x = view * vec4(in_position, 1.0);
    if (x.z > 0.0) {
        // Distortion bends the image, not depth: move the vertex within its depth plane to where
        // the lens sends it. Per vertex, so a triangle's inside follows the straight line between
        // its corners: fine for a mesh whose triangles are small against the lens's curvature.
        vec2 a = x.xy / x.z;
        float r = length(a);
        // Past the fold the polynomial turns back and would fold the far rock over the picture;
        // scaling from the fold's gain keeps those points moving outward, off the image.
        float s = r > fold ? fold / r : 1.0;
        x.xy = distort(a * s) / s * x.z;
    }
    gl_Position = projection * x;
}

#elif defined FRAGMENT_SHADER

uniform sampler2D picture;
uniform mat4 flatten;   // world -> the composed picture's clip space, as the renderer drew it
in vec3 v_world;
out vec4 f_color;

void main() {
    vec4 c = flatten * vec4(v_world, 1.0);
    vec2 uv = 0.5 * c.xy / c.w + 0.5;  // NDC y up and texture rows bottom to top agree: no flip
    bool inside = c.w > 0.0 && all(greaterThanEqual(uv, vec2(0.0))) && all(lessThanEqual(uv, vec2(1.0)));
    f_color = vec4(inside ? texture(picture, uv).rgb : vec3(0.0), 1.0);
}

#endif
