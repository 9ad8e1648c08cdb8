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
#if defined SCALED
uniform vec2 output_size;  // pixels; the light buffer is smaller (the renderer's quality scale)
#endif
out vec4 f_color;

void main() {
#if defined SCALED
    // bilinear upsampling of the light, before the shoulder, as a larger buffer would have added it
    vec3 c = texture(light, gl_FragCoord.xy / output_size).rgb * exposure;
#else
    vec3 c = texelFetch(light, ivec2(gl_FragCoord.xy), 0).rgb * exposure;
#endif
    f_color = vec4(1.0 - exp(-c), 1.0);
}

#endif
