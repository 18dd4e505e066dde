"""Evaluation tables of the report: every score with its pair count and 95% interval, beside
chance, the length-only baselines and the paper; only what is significant is coloured.

A score is green when ``learned`` (its 95% interval lies above chance and it beats both
length-only baselines, see :mod:`slamlm.eval.stats`), red when its interval lies below
chance, plain otherwise. Results written before intervals existed get a Wilson interval
from their pair count (marked "≈") and are never coloured: without lengths there is no
baseline to beat.

Example:
    >>> cell = score_cell({"accuracy": 0.61, "n_pairs": 40})
    >>> "61.0%" in cell and "class=" not in cell
    True
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from slamlm.eval.stats import half_width, vs_chance, wilson_interval

# Slam (358M, one A5000, 24 h, with DPO) and peers, from the paper (REFERENCE.md), in %.
PAPER = {
    "sblimp": {"Slam (paper)": 58.86, "TWIST-1.3B": 57.0, "SpiritLM-7B": 58.0},
    "ssc": {"Slam (paper)": 58.04, "TWIST-1.3B": 52.4, "SpiritLM-7B": 54.8},
    "tsc": {"Slam (paper)": 82.04, "TWIST-1.3B": 70.6, "SpiritLM-7B": 72.9},
}
LEGEND = ("<p class='meta'>Accuracy = share of pairs where the model gives the positive a "
          "higher log-prob (ties count half); [low, high] is the 95% Wilson interval over the "
          "benchmark's items (voices of one item averaged first). <b>Length only</b>: the score "
          "of always picking the member with fewer / more units, which a model can reach "
          "without any content. <span class='good'>Green</span>: learned (interval above 50% and "
          "above both length-only scores); <span class='bad'>red</span>: interval below 50%; "
          "plain: not distinguishable from chance or from length.</p>")


def num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def bench_key(name: str) -> str:
    n = name.lower().replace("_", "").replace("-", "")
    for k in ("sblimp", "swuggy", "tsc", "ssc", "salmon"):
        if k in n:
            return k
    if "storycloze" in n:
        return "tsc" if "topic" in n or n.startswith("t") else "ssc"
    return n


def eval_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Flatten results.json (``{"benchmarks": {name: summary}}``) into (name, summary) rows."""
    body = results.get("benchmarks", results)
    rows = []
    if isinstance(body, dict):
        for name, d in body.items():
            if isinstance(d, dict) and d.get("accuracy") is not None:
                rows.append((name, d))
    return rows


def _items(d: dict[str, Any]) -> int:
    return int(d.get("n_keys") or d.get("n_pairs") or 0)


def score_cell(d: dict[str, Any], variant: str = "mean") -> str:
    """``<td>`` with accuracy, [95% interval] and colour (see the module docstring)."""
    acc = num(d.get("accuracy" if variant == "mean" else f"accuracy_{variant}"))
    if acc is None:
        return "<td></td>"
    ci = d.get(f"ci95_{variant}") or (d.get("ci95") if variant == "mean" else None)
    approx = ""
    if not ci:
        ci, approx = wilson_interval(acc, _items(d)), "≈"
    learned = d.get("learned" if variant == "mean" else f"learned_{variant}")
    side = vs_chance(tuple(ci) if ci else None, num(d.get("chance")) or 0.5)
    cls = ' class="good"' if learned is True else ' class="bad"' if side == "below" else ""
    ci_s = f" <small>{approx}[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]</small>" if ci else ""
    return f"<td{cls}>{pct(acc)}{ci_s}</td>"


def _length_cell(d: dict[str, Any]) -> str:
    s, lo = num(d.get("length_shorter")), num(d.get("length_longer"))
    return "<td>n/a</td>" if s is None or lo is None else f"<td>{pct(s)} / {pct(lo)}</td>"


def _learned_cell(d: dict[str, Any]) -> str:
    v = d.get("learned")
    return {True: "<td class='good'>yes</td>", False: "<td>no</td>"}.get(v, "<td>n/a</td>")


def eval_section(path: Path, run_dir: Path) -> str:
    """The table of one ``results.json``."""
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return f"<p>could not read {html.escape(str(path))}: {html.escape(str(e))}</p>"
    rows = eval_rows(results)
    if not rows:
        return ""
    head = ('<tr><th class="l">benchmark</th><th>pairs (items)</th><th>accuracy, mean log-prob '
            '[95%]</th><th>accuracy, summed [95%]</th><th>chance</th><th>length only: '
            'shorter / longer</th><th>learned</th><th class="l">paper (real benchmark)</th></tr>')
    body = []
    for name, d in rows:
        paper = PAPER.get(bench_key(name), {})
        paper_s = ", ".join(f"{k} {v:.2f}" for k, v in paper.items()) or "n/a"
        body.append(
            f'<tr><td class="l">{html.escape(name)}</td><td>{d.get("n_pairs", "")} '
            f'({_items(d)})</td>{score_cell(d)}{score_cell(d, "sum")}'
            f'<td>{pct(num(d.get("chance")) or 0.5)}</td>{_length_cell(d)}{_learned_cell(d)}'
            f'<td class="l">{paper_s}</td></tr>')
    label = html.escape(str(path.relative_to(run_dir)))
    return f"<h3>{label}</h3><table class='eval'>{head}{''.join(body)}</table>"


def comparison_table(paths: list[Path], run_dir: Path) -> str:
    """One table, a column per evaluated model, when several results.json exist."""
    cols: list[tuple[str, dict[str, Any]]] = []
    for p in paths:
        try:
            rows = dict(eval_rows(json.loads(p.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
        if rows:
            cols.append((str(p.parent.relative_to(run_dir)), rows))
    if len(cols) < 2:
        return ""
    benches = list(dict.fromkeys(b for _, rows in cols for b in rows))
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in cols)
    body = []
    for b in benches:
        cells = [score_cell(rows[b]) if b in rows else "<td></td>" for _, rows in cols]
        last = next((rows[b] for _, rows in reversed(cols) if b in rows), {})
        paper = PAPER.get(bench_key(b), {}).get("Slam (paper)")
        body.append(f'<tr><td class="l">{html.escape(b)}</td><td>{last.get("n_pairs", "")} '
                    f'({_items(last)})</td>{"".join(cells)}<td>50.0%</td>{_length_cell(last)}'
                    f'<td>{f"{paper:.2f}%" if paper else "n/a"}</td></tr>')
    return ("<p>Accuracy (mean log-prob per token; ties count half) of each evaluated model, "
            "with its 95% interval.</p>"
            f"<table class='eval compare'><tr><th class='l'>benchmark</th><th>pairs (items)</th>"
            f"{head}<th>chance</th><th>length only: shorter / longer</th>"
            f"<th>Slam paper (real benchmark)</th></tr>{''.join(body)}</table>")


def scope_line(paths: list[Path]) -> str:
    """One sentence: what a run of this size can and cannot show (from its smallest bench)."""
    sizes = []
    for p in paths:
        try:
            sizes += [_items(d) for _, d in eval_rows(json.loads(p.read_text()))]
        except (OSError, json.JSONDecodeError):
            continue
    sizes = [n for n in sizes if n > 0]
    if not sizes:
        return ""
    n = min(sizes)
    h = 100 * half_width(n)
    need = math.ceil((1.959964 * 0.5 / 0.01) ** 2)
    return (f"<p class='scope'><b>What this run can show:</b> with {n} items in its smallest "
            f"benchmark, a 95% interval spans about ±{h:.0f} points around a chance-level "
            f"score, so it can show that a benchmark was learned (well above 50% and above "
            f"the length-only scores); it cannot show differences of a few points, like the "
            f"paper's 58.9% against TWIST's 57.0% on sBLIMP (±1 point needs about "
            f"{need:,} items).</p>")
