"""The plot: particle-substeps per second against N on log axes, per method and per peer."""

from __future__ import annotations

from pathlib import Path

METHOD_COLORS = {"pbf": "tab:blue", "dfsph": "tab:green", "wcsph": "tab:red", "numpy-wcsph": "tab:gray"}
PEER_MARKERS = {"waterrock": "o", "splishsplash": "s", "warp": "^"}


def _throughput_band(n: int, st: dict) -> tuple[float, float]:
    """Throughput at the first and third quartiles of the substep time."""
    half = st["iqr_ms"] / 2
    return n / ((st["median_ms"] + half) * 1e-3), n / (max(st["median_ms"] - half, 1e-6) * 1e-3)


def plot(results: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    solver = results.get("solver") or {}
    by_method: dict[str, list] = {}
    for r in solver.get("rows", []):
        by_method.setdefault(r["method"], []).append(r)
    for method, rows in by_method.items():
        rows.sort(key=lambda r: r["n"])
        n = [r["n"] for r in rows]
        y = [r["particle_substeps_per_s"] for r in rows]
        band = [_throughput_band(r["n"], r["stats"]) for r in rows]
        err = [[yi - lo for yi, (lo, _) in zip(y, band, strict=True)],
               [hi - yi for yi, (_, hi) in zip(y, band, strict=True)]]
        label = "numpy WCSPH step (baseline)" if method == "numpy-wcsph" else f"waterrock {method.upper()}"
        ax.errorbar(n, y, yerr=err, color=METHOD_COLORS.get(method, "k"), marker="o", capsize=3,
                    linestyle="--" if method == "numpy-wcsph" else "-", label=label)
    series: dict[tuple[str, str], list] = {}
    for run in (results.get("peers") or {}).get("runs", []):
        if "speedup" not in run:
            continue
        for who, res in (("waterrock", run["waterrock"]), (run["peer"], run["result"])):
            key = (who, run["method"])
            point = (res["particles"], res["particle_substeps_per_s"], run["peer_label"] if who != "waterrock" else "")
            if point not in series.setdefault(key, []):
                series[key].append(point)
    for (who, method), pts in sorted(series.items()):
        pts.sort()
        label = (f"waterrock {method.upper()}, dam break over {results['peers']['seconds']:g} s"
                 if who == "waterrock" else f"{pts[0][2]} {method.upper()}")
        if who == "warp" and results["peers"].get("device") == "cpu":
            label += " (1 thread)"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=PEER_MARKERS.get(who, "D"), markersize=8,
                linestyle=":", color=METHOD_COLORS.get(method, "k"),
                markerfacecolor="none" if who != "waterrock" else METHOD_COLORS.get(method, "k"), label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("particles N")
    ax.set_ylabel("particle-substeps per second")
    m = results.get("machine", {})
    ax.set_title(f"waterrock solver throughput: {m.get('cpu', '?')}, {m.get('usable_cores', '?')} cores, "
                 f"Taichi {m.get('taichi_arch', '?')}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if ax.has_data():
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.text(0.5, 0.5, "no solver results in this run", ha="center", va="center", transform=ax.transAxes)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
