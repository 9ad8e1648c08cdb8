"""OSC control (issue 25, item 1): what a show-control rig or TouchDesigner drives the running app with.

Listens for OSC over UDP on the scene's ``[console]`` interface and ``osc_port`` (127.0.0.1:5790
by default) and advertises the address space with OSCQuery over HTTP on ``oscquery_port`` (5791):

  /waterrock/pause, /waterrock/resume, /waterrock/reset    no argument, or one number: a trigger
                                                          when it is not 0 (a button's release is)
  /waterrock/param/<section.key> <value...>                a live setting, as the scene file names
                                                          it: /waterrock/param/render.lines.color 1 0 0
  /waterrock/status                                       replies to the sender: /waterrock/status
                                                          fps particles tracker paused time shown dropped
                                                          malformed
  /waterrock/scene <name>                                 another scene (a shipped one's name, or a
                                                          path), from the next frame: its look and its
                                                          water (a new solver), as an edit of the scene
                                                          file is (app/live.py); replies /waterrock/scene
                                                          <name>, or /waterrock/error naming the key

The live settings are :data:`LIVE_RENDER` (the look: colours, opacities, widths, the trails'
length and share, the rock's colours, the flattening, a shipped look by name) and each emitter's ``speed`` and ``rate``
(``emitters.0.speed``); the rest of a scene (the particles, the solver, the picture's size)
needs a restart. A value is validated by the scene's own pydantic models, so it takes exactly
what the scene file takes. What cannot be used (bytes that are not OSC, an unknown address, a
wrong count or type of values, a value out of range) is counted as malformed and dropped, with
a rate-limited line in the log and ``/waterrock/error <reason>`` to the sender.

The listener runs on one daemon thread (python-osc's blocking server, each datagram handed whole
to ``_receive``, as tracking/osc.py's listener does) and only reads, validates and queues; the
frame loop's ``on_frame(loop)`` applies what is queued on its own thread, the settings coalesced
to the last one a frame, and returns at once when nothing is (a queue's ``empty()``: 0.1 us). A
thread, not a process of its own as a camera's (DESIGN.md): it reads a few small messages a
second, and its share of the interpreter beside Taichi's CPU kernels and software GL answers a
status request in 9 ms (median; 28 at most, the tiny scene at 32 fps on 2 cores).

OSCQuery: python-oscquery's address space, nodes and HTTP server, bound to the console's interface
(its ``OSCQueryService`` binds every interface and always starts Zeroconf). Zeroconf announces the
two services only when the interface is a single address beyond this machine: on 127.0.0.1 a
client is given the port, and a multicast announcement would reach the whole network.
"""

from __future__ import annotations

import ipaddress
import logging
import queue
import socket
import threading
import time
import types
import typing
from dataclasses import dataclass
from http.server import HTTPServer

from pydantic import ValidationError
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from pythonoscquery.osc_query_service import OSCQueryHTTPHandler, OSCQueryHTTPServer
from pythonoscquery.shared.osc_access import OSCAccess
from pythonoscquery.shared.osc_address_space import OSCAddressSpace
from pythonoscquery.shared.osc_host_info import OSCHostInfo
from pythonoscquery.shared.osc_path_node import OSCPathNode
from pythonoscquery.shared.oscquery_spec import OSCQueryAttribute

from waterrock import files
from waterrock.app.live import apply_live, take_scene
from waterrock.rate_limit import RateLimitedLog
from waterrock.render.settings import RenderSettings, with_look
from waterrock.scene import Emitter, Scene, SceneError, _emitter_rate, load_scene

# the tracker's OSC listener: a datagram handed whole to a callback, never to python-osc's
# Dispatcher (which sleeps until a bundle's time tag), and python-osc's parse warnings counted
from waterrock.tracking.osc import Malformed, _Listener, _PythonOscWarnings, heard
from waterrock.tracking.settings import is_loopback

log = logging.getLogger(__name__)

PREFIX = "/waterrock"
PARAM = f"{PREFIX}/param/"
# the keys of [render] set while the water runs (Renderer.set_look): not the picture's size, the
# lines' rasterizer or whether the rock shows, which need a renderer made anew
LIVE_RENDER = {
    "render": ("background", "exposure"),
    "render.lines": ("color", "color_fast", "width", "width_slow", "opacity", "opacity_slow", "fast_speed", "taper",
                     "fade", "blend"),
    "render.trails": ("length", "share"),
    "render.rock": ("color", "occludes", "surface_margin", "contour_spacing", "contour_color", "contour_width"),
    # the look's weights, and its preset: all of the preset's colours and weights at once (with_look)
    "render.look": ("preset", "packing", "loose", "packed", "impact", "impact_accel", "impact_color", "impact_tint"),
    "render.projection": ("mode", "center", "azimuth_deg", "elevation_deg", "oblique_angle_deg", "oblique_strength",
                          "height", "offset", "depth", "fov_deg"),
}
LIVE_EMITTER = ("speed", "rate")  # each emitter's, through Sources.set_flow
MAX_RATE = 2000  # messages a second; beyond, dropped and counted (a flood must not take the loop's interpreter)
MAX_ERRORS = 20  # /waterrock/error replies a second at most


@dataclass(frozen=True)
class Param:
    """One live setting: its key in the scene (``render.lines.color``, ``emitters.0.speed``), the
    OSC type of each value (``f``, ``i``, ``s``, ``T``), each value's OSCQuery RANGE, and what
    the scene says it is."""

    key: str
    path: tuple  # attribute names and list indices from the Scene down
    types: str
    ranges: tuple
    description: str

    @property
    def address(self) -> str:
        return PARAM + self.key

    def get(self, scene: Scene):
        """The value in ``scene``, as OSC carries it (an emitter's rate left out: what it brings)."""
        obj = scene
        for p in self.path:
            obj = obj[p] if isinstance(p, int) else getattr(obj, p)
        if obj is None and self.path[-1] == "rate":
            obj = _emitter_rate(scene.emitters[self.path[1]], scene.fluid.spacing)
        return obj

    def values(self, scene: Scene) -> list:
        v = self.get(scene)
        return list(v) if isinstance(v, tuple) else [v]

    def read(self, args: tuple):
        """The OSC values as the scene's value: one, or a tuple; Malformed for a wrong count or type.
        An int is taken for a float, and a whole float for an int (TouchDesigner sends floats)."""
        if len(args) != len(self.types):
            raise Malformed(f"takes {len(self.types)} value{'s' if len(self.types) > 1 else ''} "
                            f"({self.types}), got {len(args)}")
        out = []
        for t, a in zip(self.types, args, strict=True):
            number = isinstance(a, int | float) and not isinstance(a, bool)
            if t == "f" and number:
                out.append(float(a))
            elif t == "i" and number and float(a).is_integer():
                out.append(int(a))
            elif t == "T" and (isinstance(a, bool) or (number and a in (0, 1))):
                out.append(bool(a))
            elif t == "s" and isinstance(a, str):
                out.append(a)
            else:
                kind = {"f": "a number", "i": "a whole number", "T": "true or false", "s": "a string"}[t]
                raise Malformed(f"takes {kind}, got {a!r}")
        return tuple(out) if len(out) > 1 else out[0]

    def set(self, scene: Scene, value) -> Scene:
        """``scene`` with this setting at ``value``, validated as the scene file's value is: the
        section by its model (``[render]``), an emitter by the whole scene (its speed limit and
        the particle budget are the scene's checks). ValidationError when it is refused."""
        if self.path[0] == "render":
            data = scene.render.model_dump()
            table = data
            for p in self.path[1:-1]:
                table = table[p]
            table[self.path[-1]] = value
            if self.key == "render.look.preset":
                data = with_look(data, value)
            return scene.model_copy(update={"render": RenderSettings.model_validate(data)})
        data = scene.model_dump()
        data["emitters"][self.path[1]][self.path[2]] = value
        return Scene.model_validate(data).model_copy(update={"path": scene.path})


def _osc_type(t) -> str:
    if t is bool:
        return "T"
    if t is int:
        return "i"
    if t is float:
        return "f"
    if t is str or typing.get_origin(t) is typing.Literal:
        return "s"
    raise TypeError(f"no OSC type for {t!r}")


def _range(t, metadata) -> dict:
    """The OSCQuery RANGE of one value: MIN and MAX from the pydantic constraints (a bound that
    excludes its end is given as that end), VALS of a Literal."""
    if typing.get_origin(t) is typing.Literal:
        return {"VALS": list(typing.get_args(t))}
    r = {}
    for m in metadata:  # annotated_types' Ge, Gt, Le, Lt, as pydantic keeps them
        for name, key in (("ge", "MIN"), ("gt", "MIN"), ("le", "MAX"), ("lt", "MAX")):
            bound = getattr(m, name, None)
            if isinstance(bound, int | float):
                r[key] = bound
    return r


def _values_of(annotation, metadata) -> list[tuple[type, list]]:
    """(type, constraints) of each OSC value a field takes: a tuple's items, an Optional's type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        constraints = [c for e in extra for c in getattr(e, "metadata", [e])]
        return _values_of(base, [*metadata, *constraints])
    if origin is tuple:
        return [v for item in typing.get_args(annotation) for v in _values_of(item, [])]
    if origin in (typing.Union, types.UnionType):
        (base,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _values_of(base, metadata)
    return [(annotation, metadata)]


def _param(key: str, path: tuple, model, name: str, bounds: dict | None = None) -> Param:
    field = model.model_fields[name]
    values = _values_of(field.annotation, field.metadata)
    ranges = tuple({**_range(t, m), **(bounds or {})} or None for t, m in values)  # null: no range (the spec's)
    return Param(key, path, "".join(_osc_type(t) for t, _ in values), ranges, field.description or "")


def live_params(scene: Scene, draws: bool = True) -> dict[str, Param]:
    """The live settings of ``scene`` by key: the look when the run draws, each emitter's flow."""
    params: dict[str, Param] = {}
    if draws:
        for section, names in LIVE_RENDER.items():
            parts = tuple(section.split("."))
            model = RenderSettings
            for p in parts[1:]:
                model = RenderSettings.model_fields[p].annotation
            for name in names:
                params[f"{section}.{name}"] = _param(f"{section}.{name}", (*parts, name), model, name)
    most = scene.fluid.max_particles * scene.solver.frame_rate  # the scene's own checks (_emitters_fit)
    for k in range(len(scene.emitters)):
        for name, bound in (("speed", {"MAX": scene.solver.max_speed}), ("rate", {"MAX": most})):
            key = f"emitters.{k}.{name}"
            params[key] = _param(key, ("emitters", k, name), Emitter, name, bound)
    return params


class _QueryServer(OSCQueryHTTPServer):
    daemon_threads = True


class _QueryServer6(_QueryServer):
    address_family = socket.AF_INET6


class _QueryHandler(OSCQueryHTTPHandler):
    """python-oscquery's handler, quiet (a line on stderr for each request otherwise), not serving
    the working directory's files to HEAD, as its base class, the file server, would, and not
    waiting for ever on a client that sends nothing."""

    timeout = 5.0

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("OSCQuery %s: " + format, self.client_address[0], *args)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self.send_error(405)


class OscControl:
    """OSC control and its OSCQuery advertisement; a console service (app/console.py):
    ``on_frame(loop)`` and ``on_second(loop)`` on the frame loop's thread, ``close()`` at the end.
    ``view``'s ``renderer`` (None: the run draws nothing, and the look is not offered) takes the
    look; ``inputs`` (session.Inputs) gives the tracker's state. Raises OSError when a port
    cannot be had, and closes what it had opened."""

    def __init__(self, scene: Scene, view=None, inputs=None, clock=time.monotonic):
        settings = scene.console
        self.scene, self.inputs, self.clock = scene, inputs, clock
        self.renderer = getattr(view, "renderer", None)
        self.params = live_params(scene, draws=self.renderer is not None)
        self._allowed = list(settings.osc_allow)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wanted = scene  # the last scene the listener accepted, or the one a live edit made (follow)
        self._lock = threading.Lock()  # over _wanted and params: the listener's and follow()'s
        self._follows = 0  # live edits of the scene file followed: a setting queued before the last is stale
        self.counts = dict.fromkeys(("messages", "malformed", "over_rate", "refused"), 0)
        self._second = (-float("inf"), 0, 0)  # this second's window: start, messages, error replies
        self._warn = RateLimitedLog(log)
        self._figures = self._status_figures(None)
        self._parse_warnings = _PythonOscWarnings()
        self._routes = {f"{PREFIX}/pause": self._command("pause"), f"{PREFIX}/resume": self._command("resume"),
                        f"{PREFIX}/reset": self._command("reset"), f"{PREFIX}/status": self._status,
                        f"{PREFIX}/scene": self._scene}
        self._zeroconf = None
        self._query = None
        self._server = _Listener((settings.interface, settings.osc_port), self._receive, self._failed)
        try:
            self.address = self._server.server_address[:2]
            if settings.oscquery_port:
                self._space, self._nodes = self._address_space(scene)
                self._query = self._query_server(settings)
        except BaseException:
            self._server.server_close()
            raise
        logging.getLogger().addFilter(self._parse_warnings)
        self._thread = threading.Thread(target=self._serve, name="OSC control", daemon=True)
        self._thread.start()
        if self._query is not None:
            threading.Thread(target=self._query.serve_forever, kwargs={"poll_interval": 0.2}, name="OSCQuery",
                             daemon=True).start()
        log.info("OSC control on %s:%d (%d live settings)%s", *self.address, len(self.params),
                 f", OSCQuery on http://{self.query_address[0]}:{self.query_address[1]}/" if self._query else "")
        if not is_loopback(settings.interface):
            if not self._allowed:
                log.warning("OSC control on %s hears every sender that reaches it: [console] osc_allow lists the "
                            "show rig's addresses", settings.interface)
            if self._query is not None:
                self._announce(settings.interface)

    # --- the frame loop's side ------------------------------------------------------------------

    def on_frame(self, loop) -> None:
        """Before each displayed frame: what was asked since the last, in order; of the settings
        only the last scene accepted. Nothing queued: one check."""
        if self._queue.empty():
            return
        wanted = None
        while True:
            try:
                what, arg = self._queue.get_nowait()
            except queue.Empty:
                break
            if what == "pause" and not loop.paused:
                loop.toggle_pause()
            elif what == "resume" and loop.paused:
                loop.toggle_pause()
            elif what == "reset":
                loop.request_reset()
            elif what == "scene":
                wanted = arg
            elif what == "switch":
                wanted = None  # settings asked for before another scene were for the one before
                self._switch(*arg, loop)
        if wanted is not None and wanted[1] == self._follows:
            apply_live(wanted[0], loop, self.renderer, self._warn.warning, "OSC control")

    def _switch(self, name: str, scene: Scene, loop) -> None:
        """Run ``scene`` instead of what runs: its look and its water (a new solver); what the app
        reads only at start (its size, its outputs, its visitors' source, its console) stays. The
        scene file's watcher, told by take_scene, follows ``scene``'s file from now on."""
        running = loop.solver.scene
        if self.renderer is not None:
            running = running.model_copy(update={"render": self.renderer.settings})
        if take_scene(scene, running, loop, self.renderer, f"OSC /waterrock/scene {name}",
                      f"scene switched to {name} by OSC", caller=self) is not None:
            now = loop.solver.scene
            self.follow(now.model_copy(update={"render": self.renderer.settings}) if self.renderer is not None else now)

    def on_second(self, loop) -> None:
        """Once a second: the figures a status request is answered with."""
        self._figures = self._status_figures(loop)

    def follow(self, scene: Scene, read: Scene | None = None) -> None:
        """``scene`` runs now (made from ``read``, the edit as read): an edit of the scene file was
        applied (app/live.py), and the next setting builds on it. One asked for before it and not
        yet applied is dropped, as it was built on the scene before (a desk's fader sends again).
        An emitter the edit added can be set from now on; OSCQuery lists the settings the app
        started with, at their values now."""
        with self._lock:
            self._wanted = scene
            self._follows += 1
            self.params = live_params(scene, draws=self.renderer is not None)
        if self._query is not None:
            self._publish_values(scene)

    def _status_figures(self, loop) -> tuple:
        tracker = self.inputs.tracker_state() if self.inputs is not None else "tracker: none"
        if loop is None:
            return 0.0, 0, tracker, False, 0.0, 0, 0
        solver = getattr(loop, "solver", None)
        return (float(loop.fps()), int(loop.particles), tracker, bool(loop.paused),
                float(solver.time) if solver is not None else 0.0, int(loop.frames_shown), int(loop.dropped))

    # --- the listener's side ---------------------------------------------------------------------

    def _serve(self) -> None:
        self._parse_warnings.thread = threading.get_ident()
        self._server.serve_forever(0.05)

    def _receive(self, data: bytes, sender: tuple) -> None:
        """One datagram: from a sender heard, within the rate, read whole or not at all."""
        if self._allowed and not self._heard(sender[0]):
            self._drop("refused", sender, "a sender not in [console] osc_allow", reply=False)
            return
        if not self._within_rate():
            self._drop("over_rate", sender, f"beyond {MAX_RATE} messages a second", reply=False)
            return
        warned = self._parse_warnings.count
        try:
            messages = [m.message for m in OscPacket(data).messages]
        except Exception as err:  # noqa: BLE001 - python-osc's parser raises more than ParseError on garbage
            self._drop("malformed", sender, f"an unreadable packet ({type(err).__name__})")
            return
        if self._parse_warnings.count != warned:
            self._drop("malformed", sender, "a packet with an unreadable part")
            return
        for m in messages:
            try:
                self._handle(m.address, tuple(m.params), sender)
            except Malformed as err:
                self._drop("malformed", sender, f"{m.address} {str(tuple(m.params))[:80]}: {err}")

    def _handle(self, address: str, args: tuple, sender: tuple) -> None:
        route = self._routes.get(address)
        if route is not None:
            route(args, sender)
        elif address.startswith(PARAM):
            self._set(address[len(PARAM):], args)
        else:
            raise Malformed("not an address of waterrock's (see OSCQuery, or docs/operator.md)")
        self.counts["messages"] += 1

    def _command(self, what: str):
        def take(args: tuple, sender: tuple) -> None:
            if len(args) > 1 or (args and not isinstance(args[0], int | float)):
                raise Malformed("takes no value, or one number (a trigger when it is not 0)")
            if not args or args[0]:
                self._queue.put((what, None))
        return take

    def _status(self, args: tuple, sender: tuple) -> None:
        if args:
            raise Malformed(f"takes no value, got {len(args)}")
        fps, particles, tracker, paused, t, shown, dropped = self._figures
        self._reply(sender, f"{PREFIX}/status", round(fps, 2), particles, tracker, int(paused), round(t, 3), shown,
                    dropped, self.counts["malformed"])

    def _scene(self, args: tuple, sender: tuple) -> None:
        """Another scene, by a shipped scene's name or a path: read and checked here, run from the
        next frame (``on_frame``), as an edit of the scene file would be (app/live.take_scene)."""
        if len(args) != 1 or not isinstance(args[0], str):
            raise Malformed("takes a scene's name")
        try:
            scene = load_scene(args[0])
        except (SceneError, OSError) as err:  # invalid, or no such scene, or unreadable
            reason = files.one_line(err)
            self.counts["refused"] += 1
            self._warn.warning("OSC control: /waterrock/scene %r refused: %s", args[0], reason)
            self._reply(sender, f"{PREFIX}/error", f"{PREFIX}/scene {args[0]}: {reason}")
            return
        self._queue.put(("switch", (args[0], scene)))
        self._reply(sender, f"{PREFIX}/scene", args[0])

    def _set(self, key: str, args: tuple) -> None:
        with self._lock:
            param = self.params.get(key)
            if param is None:
                raise Malformed(f"{key!r} is not a live setting" + ("" if self.renderer is not None or not
                                key.startswith("render.") else " (this run draws nothing)"))
            value = param.read(args)
            if value == param.get(self._wanted):
                return
            try:
                wanted = param.set(self._wanted, value)
            except ValidationError as err:
                raise Malformed("; ".join(e["msg"] for e in err.errors())) from None
            self._wanted = wanted
            self._queue.put(("scene", (wanted, self._follows)))
        if self._query is not None:
            self._publish_values(wanted)

    def _heard(self, host: str) -> bool:
        return heard(host, self._allowed, loopback=True)

    def _within_rate(self) -> bool:
        start, n, errors = self._second
        now = self.clock()
        if now - start >= 1.0:
            start, n, errors = now, 0, 0
        self._second = (start, n + 1, errors)
        return n < MAX_RATE

    def _drop(self, cause: str, sender: tuple, what: str, reply: bool = True) -> None:
        """Count one dropped for ``cause``; a line in the log now and then; the reason to the sender."""
        self.counts[cause] += 1
        c = self.counts
        self._warn.warning("OSC control from %s: dropped %s (so far: %d malformed, %d over the rate, %d refused)",
                           sender[0], what, c["malformed"], c["over_rate"], c["refused"])
        if reply:
            self._reply(sender, f"{PREFIX}/error", what[:500])

    def _failed(self, sender: tuple) -> None:
        """What the handlers above did not foresee: counted and logged, the listener goes on."""
        log.debug("OSC control: a packet broke its handler", exc_info=True)
        self._drop("malformed", sender, "a packet that broke its handler")

    def _reply(self, sender: tuple, address: str, *args) -> None:
        if address.endswith("/error"):
            start, n, errors = self._second
            if errors >= MAX_ERRORS:
                return
            self._second = (start, n, errors + 1)
        builder = OscMessageBuilder(address)
        for a in args:
            builder.add_arg(a)
        try:
            self._server.socket.sendto(builder.build().dgram, sender)
        except OSError as err:  # a sender gone, or one whose address cannot be answered
            log.debug("OSC control: no reply to %s: %s", sender, err)

    # --- OSCQuery ----------------------------------------------------------------------------------

    def _address_space(self, scene: Scene) -> tuple[OSCAddressSpace, dict[str, OSCPathNode]]:
        space, nodes = OSCAddressSpace(), {}
        commands = {"pause": "pause the water (the picture stays)", "resume": "resume the water",
                    "reset": "start the water again from the scene's first frame",
                    "status": "replies /waterrock/status fps particles tracker paused time shown dropped malformed "
                              "to the sender"}
        for name, what in commands.items():
            space.add_node(OSCPathNode(f"{PREFIX}/{name}", description=what))
        space.add_node(OSCPathNode(f"{PREFIX}/scene", OSCAccess.READWRITE_VALUE, scene.name,
                                   "the scene running; a name (or a path) switches to another from the next frame: "
                                   "its look and water; its size, outputs, visitors and console stay until a restart"))
        for key, p in self.params.items():
            node = OSCPathNode(p.address, OSCAccess.READWRITE_VALUE, p.values(scene), p.description)
            # python-oscquery 0.4 has no RANGE of its own; its encoder writes what the attributes hold
            node.attributes[OSCQueryAttribute.RANGE] = list(p.ranges)
            space.add_node(node)
            nodes[key] = node
        return space, nodes

    def _query_server(self, settings) -> OSCQueryHTTPServer:
        info = OSCHostInfo(f"waterrock {self.scene.name}", {"ACCESS": True, "VALUE": True, "RANGE": True,
                                                            "TYPE": True, "DESCRIPTION": True, "CLIPMODE": False},
                           self.address[0], self.address[1], "UDP")
        cls: type[HTTPServer] = _QueryServer6 if ":" in settings.interface else _QueryServer
        server = cls(self._space, info, (settings.interface, settings.oscquery_port), _QueryHandler, True)
        self.query_address = server.server_address[:2]
        return server

    def _publish_values(self, scene: Scene) -> None:
        """Each node's VALUE as ``scene`` has it (an emitter's speed changes its rate when the rate
        is left to its opening)."""
        with self._space.lock:
            for key, node in self._nodes.items():
                if key in self.params:  # not an emitter an edit of the scene file took away
                    node.attributes[OSCQueryAttribute.VALUE] = self.params[key].values(scene)

    def _announce(self, interface: str) -> None:
        """Zeroconf's _oscjson._tcp and _osc._udp services on ``interface``, on a thread (an
        announcement takes seconds); a wildcard address is not one a client can be given."""
        try:
            unspecified = ipaddress.ip_address(interface).is_unspecified
        except ValueError:
            unspecified = False
        if unspecified:
            log.info("OSCQuery is not announced by Zeroconf on %s: name the venue network's address as [console] "
                     "interface to announce it", interface)
            return

        def announce() -> None:
            from zeroconf import ServiceInfo, Zeroconf

            name = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"waterrock-{self.scene.name}")[:60]
            try:
                zc = Zeroconf(interfaces=[interface])
                self._zeroconf = zc
                for kind, port in (("_oscjson._tcp.local.", self.query_address[1]), ("_osc._udp.local.",
                                                                                       self.address[1])):
                    zc.register_service(ServiceInfo(kind, f"{name}.{kind}", port=port, properties={"txtvers": "1"},
                                                    server=f"{name}.local.", parsed_addresses=[interface]))
                log.info("OSCQuery announced by Zeroconf as %s on %s", name, interface)
            except Exception as err:  # noqa: BLE001 - the control works without the announcement
                log.warning("OSCQuery not announced by Zeroconf (%s: %s): clients need the address and port",
                            type(err).__name__, err)

        threading.Thread(target=announce, name="Zeroconf", daemon=True).start()

    # --- the end --------------------------------------------------------------------------------

    def stats(self) -> dict:
        """The counts so far: messages taken, malformed, over the rate, refused. Never blocks."""
        return dict(self.counts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(1.0)
        logging.getLogger().removeFilter(self._parse_warnings)
        if self._query is not None:
            self._query.shutdown()
            self._query.server_close()
        if self._zeroconf is not None:
            self._zeroconf.unregister_all_services()
            self._zeroconf.close()
