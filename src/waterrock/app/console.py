"""The operator's console: what reaches the running app from outside it (issue 25).

Each service listens on the scene's ``[console]`` interface (127.0.0.1 unless it names another)
on its own threads, and touches the app only on the frame loop's thread, through two calls:
``on_frame(loop)`` before each displayed frame (apply what was asked: pause, a parameter) and
``on_second(loop)`` once a second (take the figures others read). A port that is taken, or a
package that is missing, is a warning naming it, and the water runs on without that service.

- the status page (``app/status.py``): HTTP, a page and its JSON, a thumbnail of the output;
- OSC control (``app/control.py``): pause, resume, reset, a scene, the live parameters,
  advertised by OSCQuery;
- live edits (``app/live.py``): the scene file followed while it runs (``watch_scene``), when the
  scene was read from one;
- live video out (``app/video_out.py``): the picture as an NDI source (``ndi``), when the run draws.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def open_console(scene, view=None, inputs=None) -> list:
    """The scene's console services, started; ``view`` (its renderer, its picture) and ``inputs``
    (the tracker's state) when the run has them."""
    settings, services = scene.console, []
    starts = []
    if settings.status_port:
        starts.append(("status page", lambda: _status(scene, view, inputs)))
    if settings.osc_port:
        starts.append(("OSC control", lambda: _control(scene, view, inputs)))
    if settings.watch_scene and scene.path is not None:
        starts.append(("the scene file's watcher", lambda: _live(scene, view)))
    if settings.ndi and getattr(view, "renderer", None) is not None:
        starts.append((f"NDI source {settings.ndi!r}", lambda: _ndi(scene, view)))
    for what, start in starts:
        try:
            services.append(start())
        except (OSError, ImportError) as err:
            log.warning("%s not started (%s: %s): the water runs on without it", what, type(err).__name__, err)
    return services


def close_console(services: list) -> None:
    for service in services:
        try:
            service.close()
        except Exception as err:  # noqa: BLE001 - closing must not hide the run's own result
            log.warning("closing %s: %s: %s", type(service).__name__, type(err).__name__, err)


def _status(scene, view, inputs):
    from waterrock.app.status import StatusPage

    return StatusPage(scene, view, inputs)


def _control(scene, view, inputs):
    from waterrock.app.control import OscControl

    return OscControl(scene, view, inputs)


def _ndi(scene, view):
    from waterrock.app.video_out import NdiOut

    return NdiOut(scene.console.ndi, view.renderer, scene.solver.frame_rate)


def _live(scene, view):
    from waterrock.app.live import SceneWatcher

    return SceneWatcher(scene, view)
