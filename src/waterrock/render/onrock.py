"""The picture on the rock's shape: what a calibrated projector must show (``shaders/onrock.glsl``).

The renderer flattens the scene into one picture; a projector that sees the rock from its own
place must bend that picture so that each rock point receives the picture pixel the flattening
gives it. This is projective texturing run backwards (Segal et al., "Fast shadows and lighting
effects using texture mapping", SIGGRAPH 1992, project a texture from a light; Raskar et al.,
"Shader lamps", 2001, paint real objects this way): draw the rock mesh from the projector, with
the projector's calibrated intrinsics, pose and lens distortion (``procam.model.Pinhole``), and
colour every fragment by the composed picture at the flattening of its world position. Depth
testing keeps the surface nearest the projector, the one its light reaches. So a line drawn in
the flattened picture through a rock point lands, through the real projector, on that point of
the physical rock; where there is no rock, or the picture does not reach, the projector is black.

The lens distortion (OpenCV's radial and tangential model) is applied per vertex: a triangle's
inside is straight between its distorted corners, which is exact enough where the triangles are
small against the lens's curvature, and is why a coarse mesh on a strongly distorted lens should
be subdivided.
"""

from __future__ import annotations

import moderngl
import numpy as np
import trimesh

from waterrock.procam.model import Pinhole
from waterrock.render.programs import load_program
from waterrock.render.projection import gl_bytes

MAX_BLENDED = 4  # projectors that blend with one another on the rock (onrock.glsl's b_depth0..3)
NO_FOLD = 1e4  # a normalised radius past any lens (89.99 degrees off axis)


def depth_range(device: Pinhole, lower, upper) -> tuple[float, float]:
    """Near and far planes that hold the box ``lower``..``upper`` (the mesh's bounds) in front of
    ``device``: its corners' depths, with a margin, the near plane kept off the device's centre
    so the depth buffer keeps its precision."""
    corners = np.array([[x, y, z] for x in (lower[0], upper[0]) for y in (lower[1], upper[1])
                        for z in (lower[2], upper[2])], np.float64)
    z = device.to_device(corners)[:, 2]
    far = max(float(z.max()) * 1.01, 1e-3)
    near = max(float(z.min()) * 0.99, far * 1e-4)
    return near, far


def fold_radius(dist) -> float:
    """The normalised radius where OpenCV's radial distortion r (1 + k1 r^2 + k2 r^4 + k3 r^6)
    stops growing (its derivative 1 + 3 k1 r^2 + 5 k2 r^4 + 7 k3 r^6 reaches 0): beyond it the
    model folds back over the image, and the shader stops following it there."""
    k1, k2, _, _, k3 = np.asarray(dist, np.float64)
    roots = np.roots(np.trim_zeros([7.0 * k3, 5.0 * k2, 3.0 * k1, 1.0], "f"))  # in u = r^2
    u = [r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0]
    return float(np.sqrt(min(u))) if u else NO_FOLD


class OnRockPass:
    """Draws the composed picture onto the rock's shape as one calibrated projector sees it.

    The mesh (world coordinates) is uploaded once. The pass draws into a colour texture and depth
    buffer of its own (a window's default framebuffer may have no depth buffer, a test target
    has none): :meth:`render` leaves the result there, for the grid warp to take as its picture;
    :meth:`draw` then copies it onto a framebuffer. Framebuffers belong to one OpenGL context:
    make one OnRockPass per output window, with that window's context current."""

    def __init__(self, ctx: moderngl.Context, mesh: trimesh.Trimesh):
        self.ctx = ctx
        self.program = load_program(ctx, "onrock")
        vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
        self.bounds = vertices.min(axis=0), vertices.max(axis=0)
        self.vbo = ctx.buffer(vertices)
        self.ibo = ctx.buffer(np.ascontiguousarray(mesh.faces, dtype=np.int32))
        self.vao = ctx.vertex_array(self.program, [(self.vbo, "3f", "in_position")], self.ibo)
        self.texture: moderngl.Texture | None = None
        self._depth = self._fbo = None
        self._blend: tuple | None = None  # (devices, this one's index, gamma, ramp, depth maps)

    def blend_with(self, devices: list[Pinhole], index: int, gamma: float = 2.2, ramp: float = 0.1) -> None:
        """Share the light with the other calibrated projectors ``devices`` (this one is
        ``devices[index]``) where they overlap on the rock: each projector's depth map of the rock
        is drawn once (the rock does not move), and every frame each point's light is split by
        how far inside each image it lies, ``ramp`` of the image's width its ramp from the edge,
        through the projector's ``gamma`` so that the lights, not the pixel values, add up to one."""
        if len(devices) > MAX_BLENDED:
            raise ValueError(f"at most {MAX_BLENDED} projectors blend on the rock, not {len(devices)}")
        self._release_blend()
        program = load_program(self.ctx, "onrock", defines={"BLEND": 1})
        blend_vao = self.ctx.vertex_array(program, [(self.vbo, "3f", "in_position")], self.ibo)
        depth_prog = load_program(self.ctx, "device_depth")
        vao = self.ctx.vertex_array(depth_prog, [(self.vbo, "3f", "in_position")], self.ibo)
        maps = []
        for d in devices:
            near, far = depth_range(d, *self.bounds)
            colour = self.ctx.texture(d.size, 1, dtype="f4")
            depth = self.ctx.depth_renderbuffer(d.size)
            fbo = self.ctx.framebuffer([colour], depth)
            view = np.eye(4)
            view[:3, :3], view[:3, 3] = d.R, d.t
            depth_prog["device"].write(gl_bytes(d.gl_matrix(near, far)))
            depth_prog["device_view"].write(gl_bytes(view))
            fbo.use()
            fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            self.ctx.enable(moderngl.DEPTH_TEST)
            vao.render(moderngl.TRIANGLES)
            self.ctx.disable(moderngl.DEPTH_TEST)
            fbo.release()
            depth.release()
            colour.filter = (moderngl.NEAREST, moderngl.NEAREST)
            maps.append(colour)
        vao.release()
        depth_prog.release()
        self._blend = (list(devices), int(index), float(gamma), float(ramp), maps, program, blend_vao)

    def _blend_uniforms(self, prog) -> None:
        devices, index, gamma, ramp, maps, _, _ = self._blend
        views = np.zeros((MAX_BLENDED, 4, 4), np.float32)
        ks = np.zeros((MAX_BLENDED, 4), np.float32)
        sizes = np.ones((MAX_BLENDED, 2), np.float32)
        for k, d in enumerate(devices):
            v = np.eye(4)
            v[:3, :3], v[:3, 3] = d.R, d.t
            views[k] = v.T  # column-major, as GLSL reads a mat4
            ks[k] = (d.K[0, 0], d.K[1, 1], d.K[0, 2], d.K[1, 2])
            sizes[k] = d.size
        prog["blend_n"].value = len(devices)
        prog["self_index"].value = index
        prog["b_view"].write(views.tobytes())
        prog["b_k"].write(ks.tobytes())
        prog["b_size"].write(sizes.tobytes())
        prog["ramp_px"].value = ramp * devices[index].size[0]
        prog["gamma"].value = gamma
        for k in range(MAX_BLENDED):
            maps[min(k, len(maps) - 1)].use(1 + k)
            prog[f"b_depth{k}"].value = 1 + k

    def _release_blend(self) -> None:
        if self._blend is not None:
            for r in (*self._blend[4], self._blend[6], self._blend[5]):
                r.release()
            self._blend = None

    def _target(self, size: tuple[int, int]) -> moderngl.Framebuffer:
        size = (int(size[0]), int(size[1]))
        if self.texture is None or self.texture.size != size:
            self._release_target()
            self.texture = self.ctx.texture(size, 4)
            self._depth = self.ctx.depth_renderbuffer(size)
            self._fbo = self.ctx.framebuffer([self.texture], self._depth)
        return self._fbo

    def render(self, size: tuple[int, int], picture: moderngl.Texture, device: Pinhole,
               flatten: np.ndarray) -> moderngl.Texture:
        """Draw the projector's view of the rock, ``size`` (w, h) pixels, coloured by ``picture``
        at the flattening ``flatten`` (the world-to-clip matrix the picture was drawn with), into
        this pass's texture, and return that texture."""
        fbo = self._target(size)
        device = device.resized(size)  # the window may be a scaled mode of the projector
        near, far = depth_range(device, *self.bounds)
        view = np.eye(4)
        view[:3, :3], view[:3, 3] = device.R, device.t
        projection = device.gl_matrix(near, far) @ np.linalg.inv(view)  # gl_matrix = projection @ view
        k1, k2, p1, p2, k3 = (float(x) for x in device.dist)
        prog, vao = (self.program, self.vao) if self._blend is None else self._blend[5:7]
        prog["view"].write(gl_bytes(view))
        prog["projection"].write(gl_bytes(projection))
        prog["radial"].value = (k1, k2, k3)
        prog["tangential"].value = (p1, p2)
        prog["fold"].value = min(fold_radius(device.dist), NO_FOLD)
        prog["flatten"].write(gl_bytes(np.asarray(flatten, np.float64)))
        picture.use(0)
        prog["picture"].value = 0
        if self._blend is not None:
            self._blend_uniforms(prog)
        fbo.use()
        fbo.viewport = (0, 0, *fbo.size)
        fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)  # the mesh's winding is not trusted
        self.ctx.enable(moderngl.DEPTH_TEST)
        try:
            vao.render(moderngl.TRIANGLES)
        finally:
            self.ctx.disable(moderngl.DEPTH_TEST)
        return self.texture

    def draw(self, framebuffer: moderngl.Framebuffer, size: tuple[int, int], picture: moderngl.Texture,
             device: Pinhole, flatten: np.ndarray) -> None:
        """:meth:`render`, then the result onto ``framebuffer`` (a copy, pixel for pixel)."""
        self.render(size, picture, device, flatten)
        self.ctx.copy_framebuffer(framebuffer, self._fbo)
        framebuffer.use()  # left bound, as the warp pass leaves it, for the overlays drawn next

    def _release_target(self) -> None:
        for r in (self._fbo, self._depth, self.texture):
            if r is not None:
                r.release()
        self.texture = self._depth = self._fbo = None

    def release(self) -> None:
        self._release_blend()
        self._release_target()
        for r in (self.vao, self.ibo, self.vbo, self.program):
            r.release()
