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
        prog = self.program
        prog["view"].write(gl_bytes(view))
        prog["projection"].write(gl_bytes(projection))
        prog["radial"].value = (k1, k2, k3)
        prog["tangential"].value = (p1, p2)
        prog["fold"].value = min(fold_radius(device.dist), NO_FOLD)
        prog["flatten"].write(gl_bytes(np.asarray(flatten, np.float64)))
        picture.use(0)
        prog["picture"].value = 0
        fbo.use()
        fbo.viewport = (0, 0, *fbo.size)
        fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.ctx.disable(moderngl.BLEND | moderngl.CULL_FACE)  # the mesh's winding is not trusted
        self.ctx.enable(moderngl.DEPTH_TEST)
        try:
            self.vao.render(moderngl.TRIANGLES)
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
        self._release_target()
        for r in (self.vao, self.ibo, self.vbo, self.program):
            r.release()
