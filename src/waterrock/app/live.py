"""Live edits of the scene file (issue 25, item 3): the running app follows what the operator saves.

A console service (app/console.py). A thread watches the folder of the scene file with watchfiles,
not the file itself: an editor saves by writing a new file and renaming it over the old one, and
a watch on the old file would lose it. Each change of the file is read and validated on that
thread (``load_scene``, as at start) and queued; the frame loop's thread takes the last one before
the next frame (``on_frame``) and compares it with the last good edit:

- the look (``[render]``, but the keys below) is set at once through the renderer, and each
  emitter's speed and rate through its sources, as OSC control's settings are (:func:`apply_live`);
- any other change of the water (``[domain]``, ``[rock]``, ``[fluid]``, ``[solver]``, the sinks,
  an emitter's other keys or their number) starts the water again: a new solver from the edited
  scene, swapped in between two frames with the trails cleared, as a reset (R) does; the rock's
  picture follows a moved or replaced rock;
- what the app reads only at start (``render.resolution``, ``render.lines.rasterizer``,
  ``render.rock.visible``, ``[tracking]``, ``[projection]``, ``[governor]``, ``[console]``,
  ``[portals]``) is one warning that it needs a restart of the app; the rest of the edit applies.

An edit that does not load (not TOML, an unknown key, a value out of range, a file it names
missing) is one warning naming the file and the key, and the last good scene runs on. Each line
is its own message, with nothing left to format, so the log's rate limit (app/logs.RateLimit,
one line per message template) never holds back a different edit.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from pathlib import Path

from waterrock import files
from waterrock.render.settings import RenderSettings
from waterrock.scene import Scene, SceneError, load_scene

log = logging.getLogger(__name__)

DEBOUNCE_MS = 50  # changes a save makes (write, rename) within this of each other are one edit
# read only at start: a scene's key or a section of it
AT_START = ("render.resolution", "render.lines.rasterizer", "render.rock.visible", "tracking", "projection",
            "governor", "console", "portals")
FLOW = re.compile(r"emitters\.\d+\.(speed|rate)")  # each emitter's, set while the water runs
NOTHING = ("name", "description")  # no part of what runs
ROCK_SHAPE = ("mesh", "translate", "rotate_deg", "scale")  # what the rock's picture is made from


def apply_live(scene: Scene, loop, renderer, warn=log.warning, who: str = "scene edit") -> Scene:
    """Set what of ``scene`` differs from what runs and can change while the water runs: the look
    (``renderer``'s; None: the run draws nothing) and each emitter's speed and rate (the solver's
    sources; ``solver.scene`` follows, so that a reset starts from it). A look the GPU cannot
    draw is ``warn``-ed, naming ``who`` asked, and the running one kept. Returns ``scene`` as it
    runs now. The caller sees that the emitters differ in their flow only (OSC control, this
    module's service)."""
    if renderer is not None and scene.render != renderer.settings:
        try:
            renderer.set_look(scene.render)
        except Exception as err:  # noqa: BLE001 - a look the GPU cannot draw must not stop the water
            warn(f"{who}: the look asked for cannot be drawn (%s: %s): the last one is kept", type(err).__name__, err)
            scene = scene.model_copy(update={"render": renderer.settings})
    solver = loop.solver
    running = solver.scene.emitters
    if scene.emitters != running:
        for k, (a, b) in enumerate(zip(running, scene.emitters, strict=True)):
            if (a.speed, a.rate) != (b.speed, b.rate):
                solver.sources.set_flow(k, b.speed, b.rate)
        solver.scene = solver.scene.model_copy(update={"emitters": scene.emitters})
    return scene


def changed_keys(a, b, prefix: str = "") -> list[str]:
    """The keys in which two scenes' data (``model_dump()``) differ, as the scene file names them
    (``fluid.viscosity``, ``emitters.0.size``); a list whose length changed is named whole."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [*a, *(k for k in b if k not in a)]
        return [c for k in keys for c in changed_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [c for i, (x, y) in enumerate(zip(a, b, strict=True)) for c in changed_keys(x, y, f"{prefix}{i}.")]
    return [] if a == b else [prefix[:-1]]


def _at_start(key: str) -> bool:
    return any(key == p or key.startswith(p + ".") for p in AT_START)


class SceneWatcher:
    """Follows edits of ``scene``'s file (``scene.path``) while the app runs; ``view``'s renderer
    (when the run draws) takes the look. ``on_frame(loop)`` and ``on_second(loop)`` on the frame
    loop's thread, ``close()`` at the end (within a tenth of a second: the watch polls its stop
    event each ``DEBOUNCE_MS``)."""

    def __init__(self, scene: Scene, view=None):
        if scene.path is None:
            raise ValueError("the scene was not read from a file: nothing to watch")
        import watchfiles  # noqa: F401 - a missing package is open_console's warning, before the thread

        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected": this module says what it did
        self.path = Path(scene.path)
        self.renderer = getattr(view, "renderer", None)
        self.scene = scene  # the last good edit, as read (what the next one is compared with)
        self.edits = {"applied": 0, "refused": 0, "restarts": 0}
        self._broken = False  # the file's last edit was refused
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # each edit read: a Scene, or the SceneError's text
        self._start()

    def _start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="scene watcher", daemon=True)
        self._thread.start()
        log.info("following edits of %s", self.path)

    def follow(self, scene: Scene, read: Scene) -> None:
        """``scene`` runs now, made from ``read``, another scene as its file was read when asked for
        by name (OSC ``/waterrock/scene``): that file is followed from now on, each edit compared
        with ``read``, and the file followed before no longer (its edits would bring back the
        scene it replaced)."""
        if read.path is None or Path(read.path).resolve() == self.path.resolve():
            return
        self.close()
        self.path, self.scene, self._broken = Path(read.path), read, False
        self._queue = queue.SimpleQueue()  # an edit of the old file read meanwhile is dropped
        self._start()

    # --- the watcher's thread -------------------------------------------------------------------

    def _watch(self) -> None:
        from watchfiles import watch

        name = self.path.name
        try:
            for _ in watch(self.path.parent, watch_filter=lambda _change, p: Path(p).name == name,
                           debounce=10 * DEBOUNCE_MS, step=DEBOUNCE_MS, stop_event=self._stop, recursive=False,
                           raise_interrupt=False):
                self._queue.put(self._read())
        except Exception as err:  # noqa: BLE001 - the water runs on; only its file is no longer followed
            log.warning("the scene file %s is no longer followed (%s: %s): an edit needs a restart of the app",
                        self.path, type(err).__name__, err)

    def _read(self) -> Scene | str:
        try:
            return load_scene(self.path)
        except SceneError as err:
            return files.one_line(err)  # each problem's key in it

    # --- the frame loop's side ------------------------------------------------------------------

    def on_frame(self, loop) -> None:
        """Before each displayed frame: the last edit read since the last, applied; nothing read:
        one check."""
        if self._queue.empty():
            return
        edit = None
        while True:
            try:
                edit = self._queue.get_nowait()
            except queue.Empty:
                break
        if isinstance(edit, str):
            self.edits["refused"] += 1
            self._broken = True
            log.warning(f"scene file edit not applied, keeping the last good scene: {edit}")
        elif edit != self.scene:
            self._broken = False
            self._take(edit, loop)
        elif self._broken:
            self._broken = False
            log.info("scene file edit: back to the scene that runs")

    def on_second(self, loop) -> None:
        """Nothing once a second: an edit is taken before the next frame."""

    def _take(self, edit: Scene, loop) -> None:
        """Apply what ``edit`` changed since the last good edit; the rest of what runs (what OSC
        control set since) stays as it is."""
        restarted = take_scene(edit, self.scene, loop, self.renderer, "scene file edit", "scene edited", caller=self)
        if restarted is None:
            self.edits["refused"] += 1
            return
        self.scene = edit
        self.edits["applied"] += 1
        self.edits["restarts"] += restarted

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)


def take_scene(edit: Scene, baseline: Scene, loop, renderer, who: str, title: str, caller=None) -> bool | None:
    """Run what ``edit`` changed since ``baseline`` (the scene file's last good edit, or what
    runs, for a scene asked for by name): the look and the emitters' flow at once, other physics
    by starting the water again with a new solver, what is read only at start one warning
    (naming ``who``). Logs one line of what was done, headed ``title``, and tells the other
    console services (``caller`` excepted) what runs now. Returns whether the water restarted,
    or None when it could not start with ``edit`` (the old water runs on)."""
    changed = changed_keys(baseline.model_dump(), edit.model_dump())
    later = [k for k in changed if _at_start(k)]
    physics = [k for k in changed if k not in later and not k.startswith("render.") and not FLOW.fullmatch(k)
               and k not in NOTHING]
    look = any(k.startswith("render.") and k not in later for k in changed) and renderer is not None
    flows = sorted({int(k.split(".")[1]) for k in changed if FLOW.fullmatch(k)})
    running = loop.solver.scene  # what the solver was made from, with its emitters' flow as it is now
    wanted = running
    if renderer is not None:
        wanted = running.model_copy(update={"render": _look(edit, renderer.settings) if look else renderer.settings})
    done = []
    if physics:
        # the edited scene, with what is read only at start as the app started
        wanted = edit.model_copy(update={**{k: getattr(running, k) for k in AT_START if "." not in k},
                                         "render": wanted.render})
        if not _restart(wanted, loop, renderer, physics, who):
            return None
        done.append(f"water restarted ({', '.join(physics[:4])}{', ...' if len(physics) > 4 else ''} changed)")
    elif flows:
        emitters = list(running.emitters)
        for k in flows:
            flow = {"speed": edit.emitters[k].speed, "rate": edit.emitters[k].rate}
            emitters[k] = emitters[k].model_copy(update=flow)
        wanted = wanted.model_copy(update={"emitters": emitters})
        done.append(f"emitter flow set ({', '.join(f'emitters.{k}' for k in flows)})")
    wanted = apply_live(wanted, loop, renderer)
    if look and renderer.settings == _look(edit, renderer.settings):
        done.insert(0, "render look applied")
    if later:
        log.warning(f"{who}: {', '.join(later)} take effect at the next start of the app; the rest of the edit is "
                    f"applied")
    log.info(f"{title}: {'; '.join(done) or 'nothing that runs changed'}")
    for service in loop.console:  # OSC control's next setting builds on what runs now
        if service is not caller and hasattr(service, "follow"):
            service.follow(wanted, edit)
    return bool(physics)


def _look(edit: Scene, running: RenderSettings) -> RenderSettings:
    """``edit``'s look with what the renderer was made with kept (its size, the lines'
    rasterizer, whether the rock shows)."""
    r = edit.render
    return r.model_copy(update={
        "resolution": running.resolution,
        "lines": r.lines.model_copy(update={"rasterizer": running.lines.rasterizer}),
        "rock": r.rock.model_copy(update={"visible": running.rock.visible}),
    })


def _restart(scene: Scene, loop, renderer, physics: list[str], who: str) -> bool:
    """The water started again from ``scene`` by a new solver on the running one's backend,
    swapped in at this frame's start; the old one runs on when the new cannot be made."""
    from waterrock.solver.solver import Solver

    old = loop.solver
    try:
        solver = Solver(scene, arch=old.arch)
        if renderer is not None and any(getattr(scene.rock, k) != getattr(old.scene.rock, k) for k in ROCK_SHAPE):
            from waterrock.render.command import scene_rock

            renderer.set_rock(scene_rock(scene))
    except Exception as err:  # noqa: BLE001 - a scene that validates but cannot run must not stop the water
        log.warning(f"{who} not applied ({', '.join(physics)}): the water cannot start with it "
                    f"({type(err).__name__}: {err}); keeping the last good scene")
        return False
    solver.sources.rate_scale = old.sources.rate_scale  # the frame-rate governor's share of the water
    loop.replace_solver(solver)
    return True
