"""The window's input in-process on Xvfb: the mouse becomes a sphere under the cursor, keys drive
the loop, the overlay draws."""

from __future__ import annotations

import numpy as np
import pytest

from tests.app.test_loop import FakeSolver
from waterrock.app.loop import FrameLoop
from waterrock.render.projection import to_pixels
from waterrock.scene import load_scene

pytestmark = pytest.mark.gl


@pytest.fixture
def view(tiny_scene, xvfb_display, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb_display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from waterrock.app.window import InstallationView, Window
    from waterrock.render.renderer import Renderer

    scene = load_scene(tiny_scene)
    window = Window("waterrock test", (320, 240))
    renderer = Renderer(window.ctx, scene.render, window.framebuffer_size(), None, 100)
    v = InstallationView(window, scene, renderer)
    v.loop = FrameLoop(FakeSolver(), None, v, realtime=False)
    yield v
    v.release()
    window.close()


def test_mouse_drag_is_a_sphere_under_the_cursor(view):
    glfw = view.window.glfw
    h = view.window.handle
    glfw.set_cursor_pos(h, 100.0, 80.0)
    glfw.poll_events()
    view._on_button(h, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS, 0)
    assert view.visitor.pressed
    view.visitor.move(180.0, 80.0, t=view.visitor._t + 0.1)  # 80 px to the right in 0.1 s
    snap = view.visitor.snapshot(now=view.visitor._t)
    assert len(snap) == 1
    centre = snap.a[0]
    px = to_pixels(view.renderer.flatten, centre[None], view.renderer.size)[0]
    np.testing.assert_allclose(px, [180.0, 80.0], atol=0.5)
    assert centre[2] == pytest.approx(0.0)  # on the plane through the emitter (z = 0)
    assert snap.velocity[0, 0] > 0 and abs(snap.velocity[0, 1]) < 1e-6  # pushed the way it moved
    view._on_button(h, glfw.MOUSE_BUTTON_LEFT, glfw.RELEASE, 0)
    assert not view.visitor.pressed


def test_keys_drive_the_loop(view):
    glfw = view.window.glfw
    h = view.window.handle
    press = glfw.PRESS
    view._on_key(h, glfw.KEY_SPACE, 0, press, 0)
    assert view.loop.paused
    view._on_key(h, glfw.KEY_R, 0, press, 0)
    view._on_key(h, glfw.KEY_D, 0, press, 0)
    view._on_key(h, glfw.KEY_H, 0, press, 0)
    view.loop.tick()  # reset, overlay and help drawn without error
    assert view.loop.solver.resets == 1 and view.show_debug and view.show_help
    view.render()  # the back buffer is undefined after the tick's swap: draw again, then read
    img = view.read_screen()
    assert (img[10:40, 10:100].max(axis=-1) > 200).sum() > 20  # overlay text
    view._on_key(h, glfw.KEY_Q, 0, press, 0)
    assert view.loop.stopping
