"""``waterrock bench --compare BASELINE``: flag every figure more than 20 % worse than the baseline's.

Both sides are results JSON as ``--json`` writes them; their ``figures`` (see figures.py) are
compared key by key. Figures only one side has are listed, not judged.
"""

from __future__ import annotations

import json
from pathlib import Path

from waterrock.bench.figures import figures

TOLERANCE = 0.20


class CompareError(ValueError):
    pass


def load_figures(path_or_results) -> dict:
    if isinstance(path_or_results, dict):
        results = path_or_results
    else:
        path = Path(path_or_results)
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CompareError(f"{path}: no such baseline file") from None
        except json.JSONDecodeError as err:
            raise CompareError(f"{path}: not JSON ({err})") from None
    figs = results.get("figures") or figures(results)
    if not isinstance(figs, dict):
        raise CompareError("the results have no figures to compare")
    return figs


def compare(current: dict, baseline: dict, tolerance: float = TOLERANCE) -> dict:
    """Rows for every figure, with status ok | regressed | improved | new | not measured."""
    rows = []
    for key in sorted(set(current) | set(baseline)):
        cur, base = current.get(key), baseline.get(key)
        if cur is None or base is None:
            rows.append({"key": key, "status": "new" if base is None else "not measured",
                         "current": cur and cur["value"], "baseline": base and base["value"]})
            continue
        c, b, better = cur["value"], base["value"], base["better"]
        change = (c - b) / b if b else 0.0
        worse = -change if better == "higher" else change
        beyond_floor = abs(c - b) > base.get("floor", 0.0)
        status = "ok"
        if worse > tolerance and beyond_floor:
            status = "regressed"
        elif worse < -tolerance and beyond_floor:
            status = "improved"
        rows.append({"key": key, "status": status, "current": c, "baseline": b, "change": change,
                     "better": better, "what": base.get("what", "")})
    compared = [r for r in rows if "change" in r]
    return {"tolerance": tolerance, "rows": rows, "compared": len(compared),
            "regressed": [r["key"] for r in rows if r["status"] == "regressed"]}


def table(report: dict) -> str:
    lines = [f"compared with the baseline: {report['compared']} figures, "
             f"{len(report['regressed'])} more than {100 * report['tolerance']:.0f} % worse",
             f"{'figure':<52}{'baseline':>11}{'now':>11}{'change':>9}  status"]
    for r in report["rows"]:
        if "change" in r:
            lines.append(f"{r['key']:<52}{r['baseline']:>11.4g}{r['current']:>11.4g}{100 * r['change']:>+8.1f}%  "
                         f"{r['status']}{' (' + r['better'] + ' is better)' if r['status'] == 'regressed' else ''}")
        else:
            lines.append(f"{r['key']:<52}{'':>31}  {r['status']}")
    return "\n".join(lines)
