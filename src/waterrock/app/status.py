"""The status page (issue 25, item 2): what the running app is doing, from a phone or a monitor.

A small HTTP server (the standard library's, on its own daemon threads) on the scene's
``[console]`` interface and ``status_port`` (127.0.0.1:5780 by default) answers three paths:

- ``/``: one self-contained page (no external assets) that fetches ``/status.json`` each second
  and shows its figures, with a thumbnail of the output;
- ``/status.json``: the figures, for monitoring (``age_s``: seconds since the frame loop last
  published them; a loop that hangs stops publishing, and the age grows); made each second while
  someone reads them, none while no one does;
- ``/thumbnail.jpg``: the output's picture, about 320 px wide: a new one each second while it is
  fetched (more rarely where the frame cannot afford it; ``thumbnail.time`` in the figures says
  when it was made), none while no one looks.

The request threads never touch the frame loop's objects: once a second, on the loop's own
thread, ``on_second(loop)`` builds the figures and serialises them, and the requests read the
latest bytes (one reference, swapped). The thumbnail is the renderer's light buffer composed
again into a small framebuffer of our own, so it is the same picture whatever the view (an
offscreen target, a window, the projectors' picture before the warps) and never a read of a
window's back buffer after its swap, which is undefined. It is read back asynchronously (into a
pixel buffer, some frames later in ``on_frame``), so a GPU does not stall for it (a software
renderer finishes the frame's drawing first).
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np

log = logging.getLogger(__name__)

THUMBNAIL_WIDTH = 320  # px: the thumbnail's width (the output's, when that is smaller)
WARNINGS_KEPT = 20  # the last WARNING-or-worse lines of the 'waterrock' loggers on the page
MAX_REQUESTS = 32  # requests served at once; more are closed unanswered, so a flood cannot starve the loop
REQUEST_TIMEOUT = 5.0  # s a client may take to send its request before it is dropped
# The thumbnail is the page's one costly figure (a compose pass and a read-back: about 3 ms a time
# on a software renderer, and the wait for the frame's own drawing to finish), so a new one is made
# only once the last was fetched (or the page loaded): none while no one looks. And at most each
# second and each so many frames that it costs the frame THUMBNAIL_BUDGET_MS on average.
THUMBNAIL_BUDGET_MS = 0.1
# The figures too are made only while someone reads them (in the last FIGURES_WATCHED s); a request
# that finds them older than FRESH_AFTER s (no one read them, or the loop is slow or stuck) waits
# up to FRESH_WAIT s for the loop's next second, then takes what there is, its age_s saying how old.
FIGURES_WATCHED = 10.0
FRESH_AFTER = 1.0
FRESH_WAIT = 1.5


class StatusPage:
    """The status page's server and what it serves; a console service (app/console.py):
    ``on_frame(loop)`` and ``on_second(loop)`` on the frame loop's thread, ``close()`` at the end.
    ``view`` (its ``renderer``) gives the thumbnail, ``inputs`` (session.Inputs) the tracker's
    state; either may be None. Raises OSError when the port cannot be had."""

    def __init__(self, scene, view=None, inputs=None):
        settings = scene.console
        self.scene, self.view, self.inputs = scene, view, inputs
        self.started = _process_start_time()
        self._thumbnail = None
        renderer = getattr(view, "renderer", None)
        if renderer is not None:
            try:
                self._thumbnail = _Thumbnailer(renderer)
            except Exception as err:  # noqa: BLE001 - the page's figures are still worth having
                log.warning("status page without a thumbnail (%s: %s)", type(err).__name__, err)
        self.draws = self._thumbnail is not None  # a run that draws nothing has no thumbnail to give
        self._figures = (time.monotonic(), json.dumps(self._starting_figures(), separators=(",", ":")).encode())
        self._published = threading.Condition()  # notified when the loop publishes new figures
        self._running = False  # the loop has had its first second: a request may wait for the next
        self.figures_wanted_until = 0.0  # time.monotonic(); set by the requests for them
        self._jpeg: bytes | None = None
        self._jpeg_info: dict | None = None
        self._spent = 0.0  # s spent in on_frame and on_second, for the cost figures
        self._frames = 0
        self._last_second_ms = 0.0
        self.thumbnail_fetched = False  # the last thumbnail was fetched, or the page loaded: set by requests
        self._thumbnail_cost = 0.0  # s: the last thumbnail's, on the loop's thread and (measured once) the GPU
        self._thumbnail_frames = 0  # frames shown since the last thumbnail was asked for
        self._failed: set[str] = set()
        self.warnings = RecentWarnings(WARNINGS_KEPT)
        address = (settings.interface, settings.status_port)
        server_class = _Server6 if ":" in settings.interface else _Server
        self.server = server_class(address, _Handler, self)  # OSError when the port is taken
        self.address = self.server.server_address[:2]
        logging.getLogger("waterrock").addHandler(self.warnings)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="status page", daemon=True)
        self._thread.start()
        host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        log.info("status page on http://%s:%d/", host, self.address[1])

    # --- the frame loop's side ------------------------------------------------------------------

    def on_frame(self, loop) -> None:
        """Before each displayed frame: the next step of a thumbnail under way."""
        self._frames += 1
        self._thumbnail_frames += 1
        if self._thumbnail is None or not self._thumbnail.pending:
            return
        t0 = time.perf_counter()
        try:
            done = self._thumbnail.advance()
            if done is not None:
                self._jpeg, self._jpeg_info = done  # the request threads see the new one from here
        except Exception as err:  # noqa: BLE001 - a thumbnail is not worth the water
            self._give_up_thumbnail(err)
        spent = time.perf_counter() - t0
        self._thumbnail_cost += spent
        self._spent += spent

    def on_second(self, loop) -> None:
        """Once a second: the figures, serialised for the request threads, and a new thumbnail
        drawn, each when someone wants it."""
        t0 = time.perf_counter()
        self._running = True
        if time.monotonic() < self.figures_wanted_until:
            try:
                body = json.dumps(self.figures(loop), separators=(",", ":"), allow_nan=False).encode()
                with self._published:
                    self._figures = (time.monotonic(), body)  # the request threads see the new set from here
                    self._published.notify_all()
            except Exception as err:  # noqa: BLE001 - a figure that cannot be had must not stop the water
                self._fail_once("figures", err)
        if self._thumbnail_due():
            t1 = time.perf_counter()
            try:
                self._thumbnail.request()
            except Exception as err:  # noqa: BLE001
                self._give_up_thumbnail(err)
            # and its steps in the frames to come, and what the GPU spends on it
            self._thumbnail_cost = time.perf_counter() - t1 + (self._thumbnail.gpu_cost if self._thumbnail else 0.0)
            self._thumbnail_frames = 0
        self._last_second_ms = 1e3 * (time.perf_counter() - t0)
        self._spent += time.perf_counter() - t0

    def _thumbnail_due(self) -> bool:
        if self._thumbnail is None or self._thumbnail.pending or not self.thumbnail_fetched:
            return False
        if self._thumbnail_frames < 1e3 * self._thumbnail_cost / THUMBNAIL_BUDGET_MS:
            return False
        self.thumbnail_fetched = False  # a fetch from here on asks for the next one
        return True

    def figures(self, loop) -> dict:
        """What the page shows and monitoring reads: plain numbers, strings and lists."""
        now = time.time()
        ms = {name: _finite(v, 3) for name, v in loop.times.ms().items()}
        stats = getattr(loop, "last_stats", None) or {}
        sim_dt = getattr(loop, "sim_dt", None)
        solver = getattr(loop, "solver", None)
        return {
            "app": "waterrock",
            "scene": self.scene.name,
            "time": round(now, 3),
            "started": round(self.started, 3),
            "uptime_s": round(now - self.started, 1),
            "state": "paused" if loop.paused else "stopping" if loop.stopping else "running",
            "paused": bool(loop.paused),
            "fps": _finite(loop.fps(), 2),
            "frame_ms": _finite(sum(v for v in ms.values() if v is not None), 3),
            "stages_ms": ms,
            "frames_shown": int(loop.frames_shown),
            "sim_frames": int(getattr(loop, "sim_frames", 0)),
            "dropped": int(getattr(loop, "dropped", 0)),
            "sim_rate_hz": _finite(1.0 / sim_dt, 2) if sim_dt else None,
            "sim_time_s": _finite(getattr(solver, "time", None), 3),
            "particles": int(getattr(loop, "particles", 0)),
            "obstacles": int(getattr(loop, "obstacle_count", 0)),
            "solver": {k: _finite(stats[k], 4) for k in ("substeps", "max_speed") if k in stats},
            "governor": loop.governor.describe() if getattr(loop, "governor", None) is not None else None,
            "portals": list(loop.portals.describe()) if getattr(loop, "portals", None) is not None else [],
            "publisher": list(loop.publisher.describe()) if getattr(loop, "publisher", None) is not None else [],
            "tracker": self._tracker(),
            "memory": _memory(),
            "threads": threading.active_count(),
            "warnings": self.warnings.recent(),
            "thumbnail": self._jpeg_info,
            "status_page": {
                "ms_per_frame": _finite(1e3 * self._spent / self._frames, 4) if self._frames else None,
                "on_second_ms": _finite(self._last_second_ms, 3),
                "thumbnail_ms": _finite(1e3 * self._thumbnail_cost, 3),
            },
        }

    def _starting_figures(self) -> dict:
        """Served until the loop's first second: the app is up, its figures not yet."""
        return {"app": "waterrock", "scene": self.scene.name, "time": round(time.time(), 3),
                "started": round(self.started, 3), "state": "starting", "thumbnail": None}

    def _tracker(self) -> dict:
        inputs = self.inputs
        if inputs is None:
            return {"line": "tracker: none", "status": "none", "camera_fps": None}
        out: dict = {"line": inputs.tracker_state(), "status": "none", "camera_fps": None}
        runner = getattr(inputs, "runner", None)
        if runner is None:
            out["status"] = "stepped" if getattr(inputs, "stepped", False) else "none"
            return out
        st = runner.state()
        out.update(status=st.status, source=st.source, camera_fps=_finite(st.fps, 2), frames=int(st.frames),
                   obstacles=int(st.obstacles), reconnects=int(st.reconnects),
                   latency_ms=_finite(st.latency_ms, 2), last_error=st.last_error)
        return out

    def _give_up_thumbnail(self, err: BaseException) -> None:
        log.warning("status page: no thumbnail from here on (%s: %s)", type(err).__name__, err)
        thumbnail, self._thumbnail = self._thumbnail, None
        self.draws = False
        self._jpeg = self._jpeg_info = None
        if thumbnail is not None:
            thumbnail.release()

    def _fail_once(self, what: str, err: BaseException) -> None:
        cause = f"{what}: {type(err).__name__}: {err}"
        if cause not in self._failed:
            self._failed.add(cause)
            log.warning("status page: %s", cause, exc_info=err)

    # --- the request threads' side --------------------------------------------------------------

    def status_json(self) -> bytes:
        """The latest figures, with ``age_s`` (seconds since the loop published them) in front;
        figures older than a second are waited for (FRESH_WAIT at most)."""
        asked = time.monotonic()
        self.figures_wanted_until = asked + FIGURES_WATCHED
        when, body = self._figures  # one read of the reference: one second's set, however the loop moves on
        if self._running and asked - when > FRESH_AFTER:
            with self._published:
                self._published.wait_for(lambda: self._figures[0] > asked, timeout=FRESH_WAIT)
                when, body = self._figures
        return b'{"age_s":%.3f,' % (time.monotonic() - when) + body[1:]

    def thumbnail_jpeg(self) -> bytes | None:
        return self._jpeg

    # --- the end --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving (on the loop's thread, the renderer's context current) and let go of the
        log handler and the GPU objects."""
        logging.getLogger("waterrock").removeHandler(self.warnings)
        self.server.shutdown()
        self.server.server_close()
        if self._thumbnail is not None:
            self._thumbnail.release()
            self._thumbnail = None


class RecentWarnings(logging.Handler):
    """The last ``kept`` WARNING-or-worse records, as the page shows them. A record of the same
    cause as the one before (logger, level, message template) counts on that line instead of
    pushing the others out: a warning each frame is one line, with its count and latest time."""

    def __init__(self, kept: int = WARNINGS_KEPT):
        super().__init__(logging.WARNING)
        self.lines: collections.deque = collections.deque(maxlen=kept)
        self._last_cause: tuple | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not fit its format
            message = str(record.msg)
        line = {"time": round(record.created, 3), "level": record.levelname, "logger": record.name,
                "message": message[:500], "count": 1}
        cause = (record.name, record.levelno, str(record.msg))
        if cause == self._last_cause and self.lines:
            line["count"] = self.lines[-1]["count"] + 1
            self.lines[-1] = line  # a new dict: a list copied before still holds the old one whole
        else:
            self.lines.append(line)
        self._last_cause = cause

    def recent(self) -> list[dict]:
        with self.lock:  # handle() holds it around emit, on whatever thread logged
            return list(self.lines)


class _Thumbnailer:
    """The renderer's light buffer composed again, small, and read back some frames later.

    The compose program's scaled variant samples the light bilinearly at the centre of each of
    its pixels: at half the light buffer's size (or less) that is a 2x2 box filter, and
    ``cv2.INTER_AREA`` takes it the rest of the way down, so thin lines thin out instead of
    flickering in and out. The pass is drawn after a frame (``request``), read into a pixel buffer
    ``STEP_FRAMES`` frames later and collected as many after that (``advance``): by then the GPU,
    or a software renderer's threads, have finished each step, so the loop does not wait for them
    (a software renderer still finishes the frame's own drawing before the pass may read its
    light). Runs on the loop's thread, where the renderer's context is current."""

    STEP_FRAMES = 2

    def __init__(self, renderer, width: int = THUMBNAIL_WIDTH):
        from waterrock.render.programs import load_program

        self.renderer, self.width = renderer, width
        self.ctx = renderer.ctx
        self.program = load_program(self.ctx, "compose", {"SCALED": 1})
        self.vao = self.ctx.vertex_array(self.program, [])
        self._fbo = self._color = self._pbo = None
        self._size: tuple[int, int] | None = None  # the small framebuffer's (w, h)
        self._out: tuple[int, int] | None = None  # the thumbnail's (w, h)
        self.pending = False
        self._reading = False
        self._frames_left = 0
        self._made = 0.0
        self.gpu_cost = self._measure()

    def _measure(self) -> float:
        """Seconds the pass and its read-back take the GPU (a software renderer: the CPUs), which
        the loop does not see: timed once here, the GPU idle before and finished after, the second
        of two tries (the first compiles the shaders)."""
        spent = 0.0
        for _ in range(2):
            self.ctx.finish()
            t0 = time.perf_counter()
            self.request()
            self._fbo.read_into(self._pbo, components=3, alignment=1)
            self.ctx.finish()
            spent = time.perf_counter() - t0
        self.pending = False
        return spent

    def _ensure(self, size: tuple[int, int]) -> None:
        if self._size == size:
            return
        self._release_targets()
        self._color = self.ctx.renderbuffer(size, 4)
        self._fbo = self.ctx.framebuffer(color_attachments=[self._color])
        self._pbo = self.ctx.buffer(reserve=size[0] * size[1] * 3)
        self._size = size

    def request(self) -> None:
        """Compose the light buffer as it stands (the frame just shown) into the small target."""
        light = self.renderer.light  # remade when the governor changes the scale or a window its size
        w, h = (int(v) for v in self.renderer.size)
        tw = min(self.width, w)
        th = max(1, round(tw * h / w))
        lw, lh = light.size
        size = (min(lw, 2 * tw), min(lh, 2 * th))
        self._ensure(size)
        self.renderer.compose_into(self._fbo, size, self.program, self.vao)
        self._out, self._made = (tw, th), time.time()
        self.pending, self._reading, self._frames_left = True, False, self.STEP_FRAMES

    def advance(self) -> tuple[bytes, dict] | None:
        """Once before each frame while a thumbnail is under way: its next step when its frames
        have passed; the JPEG and what it is when it is done, else None."""
        self._frames_left -= 1
        if self._frames_left > 0:
            return None
        if not self._reading:
            self._fbo.read_into(self._pbo, components=3, alignment=1)  # into the buffer: no wait
            self._reading, self._frames_left = True, self.STEP_FRAMES
            return None
        return self._collect()

    def _collect(self) -> tuple[bytes, dict]:
        import cv2

        self.pending = False
        w, h = self._size
        rgb = np.frombuffer(self._pbo.read(), np.uint8).reshape(h, w, 3)
        tw, th = self._out
        small = rgb if (w, h) == (tw, th) else cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(small[::-1, :, ::-1])  # row 0 at the top, as cv2 writes
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError(f"cannot encode a {tw}x{th} JPEG")
        return jpeg.tobytes(), {"width": tw, "height": th, "time": round(self._made, 3)}

    def _release_targets(self) -> None:
        for r in (self._fbo, self._color, self._pbo):
            if r is not None:
                r.release()
        self._fbo = self._color = self._pbo = None
        self._size = None
        self.pending = False

    def release(self) -> None:
        self._release_targets()
        for r in (self.vao, self.program):
            r.release()


class _Handler(BaseHTTPRequestHandler):
    server_version = "waterrock-status"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection: an idle tab holds no thread
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        self._answer(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        page: StatusPage = self.server.page
        path = urlsplit(self.path).path
        if path in ("/", "/index.html", "/thumbnail.jpg"):  # someone looks: a new thumbnail is wanted
            page.thumbnail_fetched = True
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE, send_body)
        elif path == "/status.json":
            self._send(200, "application/json", page.status_json(), send_body)
        elif path == "/thumbnail.jpg":
            jpeg = page.thumbnail_jpeg()
            if jpeg is not None:
                self._send(200, "image/jpeg", jpeg, send_body)
            elif page.draws:
                self._send(503, "text/plain; charset=utf-8", b"no picture yet: ask again in a second\n", send_body,
                           {"Retry-After": "1"})
            else:
                self._send(404, "text/plain; charset=utf-8", b"no picture: this run draws nothing\n", send_body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found: / /status.json /thumbnail.jpg\n", send_body)

    def _send(self, code: int, kind: str, body: bytes, send_body: bool, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the standard library's name
        # every request and every bad one (a port scanner) at debug level: not the operator's warnings
        log.debug("status page: %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow client never holds up the end of the run
    # connections the kernel queues until this thread, which waits for the interpreter lock behind
    # the frame loop's kernels, accepts them: a burst beyond it would wait a second for SYN retries
    request_queue_size = 64

    def __init__(self, address, handler, page: StatusPage):
        self.page = page
        self._slots = threading.BoundedSemaphore(MAX_REQUESTS)
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer's own asks for the host's fully qualified name, a DNS look-up that can stall
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        # a client gone mid-answer (a closed tab): nothing for the operator; the default prints a traceback
        log.debug("status page: request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


def _finite(value, digits: int) -> float | None:
    """A number JSON can carry (NaN and infinities are not JSON), rounded."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _memory() -> dict:
    """The process's resident memory and its peak, MiB (Linux's /proc; None elsewhere)."""
    out: dict = {"rss_mib": None, "peak_rss_mib": None}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key = "rss_mib" if line.startswith("VmRSS:") else "peak_rss_mib"
                    out[key] = round(int(line.split()[1]) / 1024.0, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    return out


def _process_start_time() -> float:
    """When this process started (Unix time), from /proc; now where there is no /proc."""
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        # fields[0] is stat's third field; its 22nd, the start in clock ticks after boot, is [19]
        return time.time() - uptime + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


# The page: no external assets (a venue's network may have no internet), the figures put in with
# textContent only (a log line is text, never markup), a stable id for each figure.
PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>waterrock status</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 1em; background: #0b1420; color: #dde6f0; }
h1 { font-size: 1.2em; margin: 0 0 .6em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th { text-align: left; font-weight: normal; color: #8fa3b8; padding: .15em 1em .15em 0; }
td { font-variant-numeric: tabular-nums; padding: .15em 0; }
img { display: block; max-width: 100%; border: 1px solid #2a3a4c; background: #000; margin-bottom: 1em; }
#state.stale, #state.paused { color: #ffb347; }
ol { padding-left: 1.4em; font-size: .9em; } li.ERROR, li.CRITICAL { color: #ff7b72; }
li.none { list-style: none; color: #8fa3b8; }
</style>
</head>
<body>
<h1>waterrock <span id="scene"></span>: <span id="state">waiting for the app</span></h1>
<img id="thumbnail" alt="the output, refreshed each second" width="320" hidden>
<table>
<tr><th>displayed frame rate (fps)</th><td id="fps">-</td></tr>
<tr><th>frame time (ms)</th><td id="frame_ms">-</td></tr>
<tbody id="stages"></tbody>
<tr><th>particles</th><td id="particles">-</td></tr>
<tr><th>visitors (obstacles)</th><td id="obstacles">-</td></tr>
<tr><th>frames shown</th><td id="frames_shown">-</td></tr>
<tr><th>water frames simulated</th><td id="sim_frames">-</td></tr>
<tr><th>water frames dropped</th><td id="dropped">-</td></tr>
<tr><th>water time (s)</th><td id="sim_time">-</td></tr>
<tr><th>tracker</th><td id="tracker">-</td></tr>
<tr><th>camera rate (fps)</th><td id="camera_fps">-</td></tr>
<tr><th>governor</th><td id="governor">-</td></tr>
<tr><th>uptime</th><td id="uptime">-</td></tr>
<tr><th>memory, resident (MiB)</th><td id="memory">-</td></tr>
<tr><th>memory, peak (MiB)</th><td id="memory_peak">-</td></tr>
<tr><th>figures from</th><td id="updated">-</td></tr>
</table>
<div>last warnings</div>
<ol id="warnings"></ol>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const put = (id, v) => { $(id).textContent = (v === null || v === undefined) ? "-" : String(v); };
const fixed = (v, n) => (typeof v === "number") ? v.toFixed(n) : null;
function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + " d " : "") + (d || h ? h + " h " : "") + (d || h || m ? m + " min " : "") + s % 60 + " s";
}
let thumbnailTime = null;
function show(s) {
  put("scene", s.scene);
  const state = $("state");
  state.textContent = s.state;
  state.className = s.state;
  if (s.state === "starting") return;
  document.title = "waterrock " + s.scene + ": " + fixed(s.fps, 1) + " fps";
  put("fps", fixed(s.fps, 1));
  put("frame_ms", fixed(s.frame_ms, 1));
  const stages = $("stages");
  for (const [name, ms] of Object.entries(s.stages_ms)) {
    let cell = $("stage-" + name);
    if (!cell) {
      const row = stages.insertRow(), th = document.createElement("th");
      th.textContent = "\\u2003" + name + " (ms)";
      row.appendChild(th);
      cell = row.insertCell();
      cell.id = "stage-" + name;
    }
    cell.textContent = fixed(ms, 1);
  }
  put("particles", s.particles);
  put("obstacles", s.obstacles);
  put("frames_shown", s.frames_shown);
  put("sim_frames", s.sim_frames);
  put("dropped", s.dropped);
  put("sim_time", fixed(s.sim_time_s, 1));
  put("tracker", s.tracker.line);
  put("camera_fps", s.tracker.camera_fps === null ? "no camera" : fixed(s.tracker.camera_fps, 1));
  put("governor", s.governor || "off");
  put("uptime", duration(s.uptime_s));
  put("memory", fixed(s.memory.rss_mib, 0));
  put("memory_peak", fixed(s.memory.peak_rss_mib, 0));
  put("updated", new Date(s.time * 1000).toLocaleTimeString() + " (" + fixed(s.age_s, 1) + " s old)");
  const list = $("warnings");
  list.replaceChildren(...s.warnings.slice().reverse().map((w) => {
    const li = document.createElement("li");
    li.className = w.level;
    li.textContent = new Date(w.time * 1000).toLocaleTimeString() + " " + w.level + " " + w.logger + ": " + w.message
      + (w.count > 1 ? " (" + w.count + " times)" : "");
    return li;
  }));
  if (!s.warnings.length) {
    list.replaceChildren(Object.assign(document.createElement("li"), {textContent: "none", className: "none"}));
  }
  const img = $("thumbnail");
  if (s.thumbnail && s.thumbnail.time !== thumbnailTime) {
    thumbnailTime = s.thumbnail.time;
    img.src = "/thumbnail.jpg?t=" + thumbnailTime;  // a new address each second: no cached picture
  }
  img.hidden = !s.thumbnail;  // a run that draws nothing has none
}
async function poll() {
  try {
    const answer = await fetch("/status.json", {cache: "no-store"});
    show(await answer.json());
  } catch (err) {
    $("state").textContent = "no answer from the app (" + new Date().toLocaleTimeString() + ")";
    $("state").className = "stale";
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
"""
