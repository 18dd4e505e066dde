"""``slam report RUN_DIR``: one self-contained HTML file describing a run.

It finds, anywhere under the run folder: ``metrics.jsonl`` (training / DPO curves),
``results.json`` (evaluation), ``generations.jsonl`` (+ wav files) and ``config.yaml`` files,
and renders loss / learning-rate / throughput plots (inline SVG), the evaluation table beside
chance and the paper's numbers, audio players (base64 data URIs) and the resolved configs.

Example:
    >>> # build_report(Path("demo_run"))  -> demo_run/report.html
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamlm.io import atomic_write_text, read_jsonl
from slamlm.report.browser import RENDER_SCRIPT
from slamlm.report.plots import line_plot_svg

log = logging.getLogger(__name__)

# Slam (358M, one A5000, 24 h, with DPO) and peers, from the paper (REFERENCE.md), in %.
PAPER = {
    "sblimp": {"Slam (paper)": 58.86, "TWIST-1.3B": 57.0, "SpiritLM-7B": 58.0},
    "ssc": {"Slam (paper)": 58.04, "TWIST-1.3B": 52.4, "SpiritLM-7B": 54.8},
    "tsc": {"Slam (paper)": 82.04, "TWIST-1.3B": 70.6, "SpiritLM-7B": 72.9},
}
PAPER_GEN = {"genppl": 62.8, "auto_bleu": 3.88}
MAX_AUDIO_BYTES = 4_000_000

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1120px;color:#222}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.meta{color:#666;font-size:13px} .plots{display:flex;flex-wrap:wrap;gap:12px}
table{border-collapse:collapse;margin:8px 0;font-size:14px} th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} .gen{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
.gen audio{width:320px;vertical-align:middle} pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
.good{color:#1a7f37;font-weight:bold}
"""


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _series(rows: list[dict[str, Any]], key: str, x: str = "step") -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        xv, yv = _num(r.get(x)), _num(r.get(key))
        if xv is not None and yv is not None:
            xs.append(xv)
            ys.append(yv)
    return xs, ys


def _training_section(path: Path, run_dir: Path) -> str:
    rows = list(read_jsonl(path, skip_bad=True))
    if not rows:
        return ""
    label = html.escape(str(path.parent.relative_to(run_dir)) or ".")
    loss_keys = [k for k in ("loss", "val_loss", "dpo_loss", "reward_accuracy", "reward_margin",
                             "heldout_reward_accuracy", "heldout_reward_margin")
                 if any(k in r for r in rows)]
    plots = []
    main = {k: _series(rows, k) for k in loss_keys if k in ("loss", "val_loss", "dpo_loss")}
    plots.append(line_plot_svg(main, title=f"loss ({label})", xlabel="step", ylabel="loss"))
    dpo = {k: _series(rows, k) for k in ("reward_accuracy", "reward_margin",
                                         "heldout_reward_accuracy", "heldout_reward_margin")
           if k in loss_keys}
    if dpo:
        plots.append(line_plot_svg(dpo, title=f"DPO rewards ({label})", xlabel="step"))
    plots.append(line_plot_svg({"lr": _series(rows, "lr")}, title="learning rate", xlabel="step", ylabel="lr"))
    tps = _series(rows, "tokens_per_s")
    if tps[0]:
        plots.append(line_plot_svg({"tokens/s": tps}, title="throughput", xlabel="step", ylabel="tokens/s"))
    mfu = _series(rows, "mfu")
    if mfu[0]:
        plots.append(line_plot_svg({"MFU": mfu}, title="model FLOP utilisation", xlabel="step", ylabel="MFU"))
    summary = _training_summary(rows)
    return (f'<h3>{label}</h3><div class="plots">{"".join(plots)}</div>{summary}')


def _training_summary(rows: list[dict[str, Any]]) -> str:
    def first_last(key: str) -> tuple[float | None, float | None]:
        vals = [_num(r.get(key)) for r in rows if _num(r.get(key)) is not None]
        return (vals[0], vals[-1]) if vals else (None, None)

    cells = []
    for key, name in (("loss", "train loss"), ("val_loss", "validation loss"),
                      ("reward_accuracy", "reward accuracy"),
                      ("heldout_reward_accuracy", "held-out reward accuracy"),
                      ("heldout_reward_margin", "held-out reward margin")):
        a, b = first_last(key)
        if a is not None:
            better = b > a if "reward" in key else b < a
            cls = ' class="good"' if better else ""
            cells.append(f'<tr><td class="l">{name}</td><td>{a:.4f}</td><td{cls}>{b:.4f}</td></tr>')
    tps = [_num(r.get("tokens_per_s")) for r in rows if _num(r.get("tokens_per_s"))]
    if tps:
        cells.append(f'<tr><td class="l">tokens/s (median)</td><td colspan="2">{sorted(tps)[len(tps) // 2]:,.0f}</td></tr>')
    steps = [_num(r.get("step")) for r in rows if _num(r.get("step")) is not None]
    if steps:
        cells.append(f'<tr><td class="l">steps</td><td colspan="2">{int(max(steps))}</td></tr>')
    if not cells:
        return ""
    return ('<table class="summary"><tr><th class="l">metric</th><th>start</th><th>end</th></tr>'
            + "".join(cells) + "</table>")


def _bench_key(name: str) -> str:
    n = name.lower().replace("_", "").replace("-", "")
    for k in ("sblimp", "swuggy", "tsc", "ssc", "salmon"):
        if k in n:
            return k
    if "storycloze" in n:
        return "tsc" if "topic" in n or n.startswith("t") else "ssc"
    return n


def _eval_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Flatten results.json (``{"benchmarks": {name: summary}}``) into (name, summary) rows."""
    body = results.get("benchmarks", results)
    rows = []
    if isinstance(body, dict):
        for name, d in body.items():
            if isinstance(d, dict) and d.get("accuracy") is not None:
                rows.append((name, d))
    return rows


def _eval_section(path: Path, run_dir: Path) -> str:
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return f"<p>could not read {html.escape(str(path))}: {html.escape(str(e))}</p>"
    rows = _eval_rows(results)
    if not rows:
        return ""
    head = ('<tr><th class="l">benchmark</th><th>pairs</th><th>accuracy (mean log-prob)</th>'
            '<th>accuracy (summed)</th><th>chance</th><th class="l">paper (real benchmark)</th></tr>')
    body = []
    for name, d in rows:
        acc, acc_sum = _num(d.get("accuracy")), _num(d.get("accuracy_sum"))
        n = d.get("n_pairs")
        chance = _num(d.get("chance")) or 0.5
        paper = PAPER.get(_bench_key(name), {})
        paper_s = ", ".join(f"{k} {v:.2f}" for k, v in paper.items()) or "n/a"
        cls = ' class="good"' if acc is not None and acc > chance else ""
        body.append(
            f'<tr><td class="l">{html.escape(name)}</td><td>{n if n is not None else ""}</td>'
            f"<td{cls}>{_pct(acc)}</td><td>{_pct(acc_sum)}</td><td>{_pct(chance)}</td>"
            f'<td class="l">{paper_s}</td></tr>')
    label = html.escape(str(path.relative_to(run_dir)))
    return f"<h3>{label}</h3><table class='eval'>{head}{''.join(body)}</table>"


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def _audio_tag(path: Path) -> str:
    if not path.is_file():
        return f"<em>missing: {html.escape(str(path))}</em>"
    data = path.read_bytes()
    if len(data) > MAX_AUDIO_BYTES:
        return f"<em>{html.escape(path.name)} ({len(data) // 1000} kB, too large to embed)</em>"
    mime = "audio/flac" if path.suffix.lower() == ".flac" else "audio/wav"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<audio controls preload="none" src="data:{mime};base64,{b64}"></audio>'


def _resolve(p: Any, base: Path) -> Path | None:
    if not p:
        return None
    path = Path(str(p))
    return path if path.is_absolute() else base / path


def _generation_section(path: Path, run_dir: Path) -> str:
    items = []
    for r in read_jsonl(path, skip_bad=True):
        base = path.parent
        prompt = _resolve(r.get("prompt_clip") or r.get("prompt_path"), base)
        out = _resolve(r.get("wav"), base)
        text, prompt_text = r.get("transcript"), r.get("prompt_transcript")
        parts = [f'<div class="gen"><b>{html.escape(str(r.get("id", "")))}</b><br>']
        if prompt is not None and prompt.suffix.lower() in (".wav", ".flac"):
            parts.append(f"prompt: {_audio_tag(prompt)} ")
            if prompt_text:
                parts.append(f"<i>{html.escape(str(prompt_text))}</i>")
            parts.append("<br>")
        if out is not None:
            parts.append(f"prompt → continuation: {_audio_tag(out)} ")
        if text:
            parts.append(f"<i>{html.escape(str(text))}</i>")
        n_units = len(r.get("generated_units") or [])
        if n_units:
            parts.append(f"<br><small>{n_units} generated units</small>")
        parts.append("</div>")
        items.append("".join(parts))
    return "".join(items)


def _configs_section(run_dir: Path, out: Path) -> str:
    parts = []
    for p in sorted(run_dir.rglob("*.yaml")):
        if out in p.parents or any(s.startswith(".") for s in p.relative_to(run_dir).parts):
            continue
        rel = p.relative_to(run_dir)
        if "ckpt" in rel.parts and p.name == "run.yaml":
            continue  # the same as the stage's config.yaml
        parts.append(f"<details><summary>{html.escape(str(rel))}</summary>"
                     f"<pre>{html.escape(p.read_text()[:20000])}</pre></details>")
    return "".join(parts)


PIPELINE_ORDER = ("synth", "units", "init", "pretrain", "dpo", "eval", "generate")


def _pipeline_key(p: Path, run_dir: Path) -> tuple[int, str]:
    """Sort outputs in pipeline order (init, pretrain, dpo ...) rather than alphabetically."""
    parts = p.relative_to(run_dir).parts
    ranks = [PIPELINE_ORDER.index(x) for x in parts if x in PIPELINE_ORDER]
    return (min(ranks) * 10 + max(ranks) if ranks else 99, str(p))


def _files(run_dir: Path, name: str) -> list[Path]:
    found = [p for p in run_dir.rglob(name)
             if not any(s.startswith(".") for s in p.relative_to(run_dir).parts)]
    return sorted(found, key=lambda p: _pipeline_key(p, run_dir))


def _comparison_table(paths: list[Path], run_dir: Path) -> str:
    """One table, a column per evaluated model, when several results.json exist."""
    cols: list[tuple[str, dict[str, Any]]] = []
    for p in paths:
        try:
            rows = dict(_eval_rows(json.loads(p.read_text())))
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
        cells = []
        for _, rows in cols:
            d = rows.get(b)
            acc = _num(d.get("accuracy")) if d else None
            cls = ' class="good"' if acc is not None and acc > (_num(d.get("chance")) or 0.5) else ""
            cells.append(f"<td{cls}>{_pct(acc)}</td>")
        paper = PAPER.get(_bench_key(b), {}).get("Slam (paper)")
        body.append(f'<tr><td class="l">{html.escape(b)}</td>{"".join(cells)}<td>50.0%</td>'
                    f'<td>{f"{paper:.2f}%" if paper else "n/a"}</td></tr>')
    return ("<p>Accuracy (mean log-prob per token; ties count half) of each evaluated model.</p>"
            f"<table class='eval compare'><tr><th class='l'>benchmark</th>{head}<th>chance</th>"
            f"<th>Slam paper (real benchmark)</th></tr>{''.join(body)}</table>")


def build_report(run_dir: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Write ``report.html`` (self-contained) for ``run_dir`` and return its path."""
    from slamlm import __version__

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder does not exist")
    out = Path(out) if out else run_dir / "report.html"
    training = [s for p in _files(run_dir, "metrics.jsonl") if (s := _training_section(p, run_dir))]
    result_files = _files(run_dir, "results.json")
    evals = [s for p in result_files if (s := _eval_section(p, run_dir))]
    compare = _comparison_table(result_files, run_dir)
    if compare:
        evals = [compare, "<details><summary>per-model details</summary>", *evals, "</details>"]
    gens = [s for p in _files(run_dir, "generations.jsonl") if (s := _generation_section(p, run_dir))]
    extra = _extra_sections(run_dir)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    title = title or f"slamlm run: {run_dir.name}"
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<div class="meta">{html.escape(str(run_dir.resolve()))} · slamlm {__version__} · {now}</div>',
            extra,
            "<h2>Training</h2>", "".join(training) or "<p>no metrics.jsonl found</p>",
            "<h2>Evaluation</h2>", "".join(evals) or "<p>no results.json found</p>",
            "<h2>Generations</h2>", "".join(gens) or "<p>no generations.jsonl found</p>",
            "<h2>Configs</h2>", _configs_section(run_dir, out) or "<p>none</p>"]
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
           f"<style>{CSS}</style></head><body>{''.join(body)}{RENDER_SCRIPT}</body></html>")
    atomic_write_text(out, doc)
    log.info("report written to %s (%d kB)", out, len(doc) // 1000)
    return out


def _extra_sections(run_dir: Path) -> str:
    """Optional ``demo_summary.json`` written by ``slam demo`` (steps, timings, notes)."""
    p = run_dir / "demo_summary.json"
    if not p.is_file():
        return ""
    try:
        summary = json.loads(p.read_text())
    except json.JSONDecodeError:
        return ""
    rows = "".join(
        f'<tr><td class="l">{html.escape(str(s.get("step")))}</td><td>{_num(s.get("seconds")) or 0:.1f}</td>'
        f'<td class="l">{html.escape(str(s.get("note", "")))}</td></tr>'
        for s in summary.get("steps", []))
    return ("<h2>Pipeline</h2><table><tr><th class='l'>step</th><th>seconds</th><th class='l'>note</th></tr>"
            f"{rows}</table>")


@dataclass(frozen=True)
class ReportConfig:
    """``slam report``: a run folder -> one self-contained HTML file."""

    run_dir: str = ""  # a run folder (anything slam wrote: metrics, results, generations)
    out: str | None = None  # output HTML path (default RUN_DIR/report.html)
    screenshot: bool = False  # also save report.png with headless Chromium and check it renders


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    """Build the report (and the screenshot): ``{"report": path, "screenshot": png|None,
    "rendered": bool|None}``."""
    if not cfg.run_dir:
        raise ValueError("slam report: give the run folder (slam report RUN_DIR)")
    if not Path(cfg.run_dir).is_dir():
        raise FileNotFoundError(f"{cfg.run_dir}: not a folder (slam report RUN_DIR)")
    out = build_report(Path(cfg.run_dir), cfg.out)
    result: dict[str, Any] = {"report": out, "screenshot": None, "rendered": None}
    if cfg.screenshot:
        from slamlm.report.browser import render_check, screenshot

        result["screenshot"] = screenshot(out, out.with_suffix(".png"))
        result["rendered"] = render_check(out)
    return result


def show_report(result: dict[str, Any], cfg: ReportConfig) -> None:
    print(f"report: {result['report']}")
    if result["screenshot"] is not None:
        print(f"screenshot: {result['screenshot']}; rendered: {result['rendered']}")
