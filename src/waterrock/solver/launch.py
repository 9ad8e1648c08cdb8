"""A substep's kernel launches, replayed as one compiled Taichi graph.

Taichi 1.7 checks every argument of every launch in Python: about 4 us per ndarray, 70 us for a
kernel of 13 arguments (measured on the 2-core CPU). A compiled graph (``ti.graph``) dispatches
the same kernel in about 12 us. A substep is 15 to 40 launches with no host read between them,
so the solver records them in a :class:`Batch` and runs the batch as a graph: one per distinct
sequence of kernels and argument types, compiled on first use and cached. The arguments are
bound by position on every run, so the front and back buffers may trade places between runs.
Where a part of the substep repeats a varying number of times (DFSPH's iterations), the solver
runs what it has recorded before it (``Solver.flush``), so that the part is a graph of its own
and the number of graphs stays fixed.

Where graphs cannot be built (a backend without them), the batch launches its kernels one by
one, after a warning.

Measured and undone: keeping each graph's argument names and the arrays' signatures between
runs, rather than building them afresh, saved 4 % of a 512-particle substep's host time but
made the running app keep about 20 bytes more a frame (the default scene with a visitor and a
snapshot a frame: 23 against 3 bytes a frame, 20,000 frames, twice each).
"""

from __future__ import annotations

import logging

import taichi as ti

log = logging.getLogger(__name__)


class Batch:
    """Kernel launches recorded in order: ``batch(kernel, *args)`` in place of ``kernel(*args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, tuple]] = []

    def __call__(self, kernel, *args) -> None:
        self.calls.append((kernel, args))


def launch_now(kernel, *args) -> None:
    """The direct launcher, for work outside a substep (reset, measurement)."""
    kernel(*args)


def _array_type(a: ti.Ndarray):
    n = getattr(a, "n", None)
    m = getattr(a, "m", None)
    if m is not None:
        return ti.types.matrix(n, m, a.dtype)
    if n is not None:
        return ti.types.vector(n, a.dtype)
    return a.dtype


def _signature(args) -> tuple:
    """What a graph's symbols depend on (Taichi's vector types compare by identity: not those)."""
    return tuple(
        (getattr(a, "n", None), getattr(a, "m", None), str(a.dtype), len(a.shape)) if isinstance(a, ti.Ndarray)
        else type(a)
        for a in args
    )


class Graphs:
    """Runs batches as compiled graphs, one per sequence of kernels and argument types."""

    def __init__(self) -> None:
        # a graph and, per call and argument, the cast its scalar value needs (None for arrays)
        self._compiled: dict[tuple, tuple[object, list]] = {}
        self.enabled = True

    def run(self, batch: Batch) -> None:
        calls, batch.calls = batch.calls, []
        compiled = self._lookup(calls) if calls and self.enabled else None
        if compiled is None:
            for kernel, args in calls:
                kernel(*args)
            return
        graph, casts = compiled
        values = {}
        for c, (_, args) in enumerate(calls):
            for k, a in enumerate(args):
                cast = casts[c][k]
                values[f"{c}_{k}"] = cast(a) if cast is not None else a
        graph.run(values)

    def _lookup(self, calls: list) -> tuple[object, list] | None:
        """The calls' graph, compiled on first use; None (and graphs off) where none can be built."""
        key = tuple((kernel, _signature(args)) for kernel, args in calls)
        if key not in self._compiled:
            try:
                self._compiled[key] = self._compile(calls)
            except Exception as err:  # noqa: BLE001 - any failure: launch one by one from now on
                log.warning("Taichi graphs unavailable here (%s): kernels are launched one by one", err)
                self.enabled = False
                return None
        return self._compiled[key]

    def _compile(self, calls: list) -> tuple[object, list]:
        builder = ti.graph.GraphBuilder()
        casts = []
        for c, (kernel, args) in enumerate(calls):
            symbols, call_casts = [], []
            for k, (param, a) in enumerate(zip(kernel._primal.arguments, args, strict=True)):
                name = f"{c}_{k}"
                if isinstance(a, ti.Ndarray):
                    symbols.append(ti.graph.Arg(ti.graph.ArgKind.NDARRAY, name, dtype=_array_type(a),
                                                ndim=len(a.shape)))
                    call_casts.append(None)
                else:
                    dtype = param.annotation
                    symbols.append(ti.graph.Arg(ti.graph.ArgKind.SCALAR, name, dtype=dtype))
                    call_casts.append(float if dtype in (ti.f32, ti.f64) else int)
            builder.dispatch(kernel, *symbols)
            casts.append(call_casts)
        return builder.compile(), casts


def on_cpu() -> bool:
    """Whether the kernels run on a CPU: the forms of several loops depend on it (the neighbour
    lists' layout, neighbors._list_slot, and how build_lists fills them; the scan's blocks,
    scan.scan_suits_backend)."""
    return ti.lang.impl.current_cfg().arch in (ti.x64, ti.arm64)
