// Composes the accumulated light onto the output: a soft shoulder instead of a hard clip, so
// where many lines cross the water turns white gradually, as a real waterfall's foam does.

#if defined VERTEX_SHADER

void main() {
    // One triangle that covers the screen, from the vertex id alone.
    vec2 p = vec2(float((gl_VertexID & 1) << 2), float((gl_VertexID & 2) << 1)) - 1.0;
    gl_Position = vec4(p, 0.0, 1.0);
}

#elif defined FRAGMENT_SHADER

uniform sampler2D light;
uniform float exposure;
out vec4 f_color;

void main() {
    vec3 c = texelFetch(light, ivec2(gl_FragCoord.xy), 0).rgb * exposure;
    f_color = vec4(1.0 - exp(-c), 1.0);
}

#endif
