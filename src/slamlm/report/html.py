"""``slam report RUN_DIR``: one self-contained HTML file describing a run.

It finds, anywhere under the run folder: ``metrics.jsonl`` (training / DPO curves),
``results.json`` (evaluation), ``generations.jsonl`` (+ wav files) and ``config.yaml`` files,
and renders loss / learning-rate / throughput plots (matplotlib, inline SVG; the loss plot
with the loss of a uniform guess, ln of the vocabulary), the evaluation tables (every score
with its pair count and 95% interval, beside chance, the length-only baselines and the
paper; only learned scores in green), one line on what a run of this size can show,
the generations (audio players, reference text beside the ASR text, GenPPL and Auto-BLEU)
and the resolved configs.

Example:
    >>> # build_report(Path("demo_run"))  -> demo_run/report.html
"""

from __future__ import annotations

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
from slamlm.report.evaltable import LEGEND, PAPER, comparison_table, eval_section, scope_line
from slamlm.report.evaltable import num as _num
from slamlm.report.generations import generation_section
from slamlm.report.plots import line_plot_svg

log = logging.getLogger(__name__)

__all__ = ["PAPER", "ReportConfig", "build_report", "run_report", "show_report"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1180px;color:#222}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
.meta{color:#666;font-size:13px} .plots{display:flex;flex-wrap:wrap;gap:12px}
table{border-collapse:collapse;margin:8px 0;font-size:14px} th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} .gen{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
.gen audio{width:300px;vertical-align:middle} pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
td small{color:#555} .good{color:#1a7f37;font-weight:bold} .bad{color:#b42318;font-weight:bold}
.scope{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px}
"""


def _series(rows: list[dict[str, Any]], key: str, x: str = "step") -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        xv, yv = _num(r.get(x)), _num(r.get(key))
        if xv is not None and yv is not None:
            xs.append(xv)
            ys.append(yv)
    return xs, ys


def _vocab_size(folder: Path) -> int | None:
    """Token vocabulary of the run whose metrics are in ``folder`` (a checkpoint's config.json)."""
    from slamlm.vocab import UnitVocab

    for cfg in sorted(folder.glob("**/config.json"))[:50]:
        try:
            meta = json.loads(cfg.read_text())
            if meta.get("vocab"):
                return UnitVocab.from_dict(meta["vocab"]).size
        except (OSError, json.JSONDecodeError, TypeError, ValueError, KeyError):
            continue
    return None


def _dedup_series(series: dict[str, tuple[list[float], list[float]]]
                  ) -> dict[str, tuple[list[float], list[float]]]:
    """Merge series that are the same numbers (DPO logs ``loss`` = ``dpo_loss``) into one."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, s in series.items():
        twin = next((k for k, v in out.items() if v == s and s[0]), None)
        if twin is None:
            out[name] = s
        else:
            out[f"{twin} (= {name})"] = out.pop(twin)
    return out


def _training_section(path: Path, run_dir: Path) -> str:
    rows = list(read_jsonl(path, skip_bad=True))
    if not rows:
        return ""
    label = html.escape(str(path.parent.relative_to(run_dir)) or ".")
    keys = {k for r in rows for k in r}
    main = _dedup_series({k: _series(rows, k) for k in ("loss", "val_loss", "dpo_loss") if k in keys})
    vocab = _vocab_size(path.parent) if "dpo_loss" not in keys else None
    ref = {f"uniform guess: ln {vocab} = {math.log(vocab):.2f}": math.log(vocab)} if vocab else {}
    plots = [line_plot_svg(main, title=f"loss ({label})", xlabel="step", ylabel="loss (nats/token)",
                           hlines=ref)]
    acc = {k: _series(rows, k) for k in ("reward_accuracy", "heldout_reward_accuracy") if k in keys}
    if acc:
        plots.append(line_plot_svg(acc, title=f"DPO reward accuracy ({label})", xlabel="step",
                                   ylabel="accuracy", hlines={"chance": 0.5}))
    margin = {k: _series(rows, k) for k in ("reward_margin", "heldout_reward_margin") if k in keys}
    if margin:
        plots.append(line_plot_svg(margin, title=f"DPO reward margin ({label})", xlabel="step",
                                   ylabel="margin (nats)"))
    plots.append(line_plot_svg({"lr": _series(rows, "lr")}, title="learning rate", xlabel="step",
                               ylabel="lr"))
    for key, name, ylabel in (("tokens_per_s", "throughput", "tokens/s"),
                              ("mfu", "model FLOP utilisation", "MFU")):
        xy = _series(rows, key)
        if xy[0]:
            plots.append(line_plot_svg({ylabel: xy}, title=name, xlabel="step", ylabel=ylabel))
    summary = _training_summary(rows, vocab)
    return f'<h3>{label}</h3><div class="plots">{"".join(plots)}</div>{summary}'


def _training_summary(rows: list[dict[str, Any]], vocab: int | None = None) -> str:
    """Start / end of the logged losses and rewards (uncoloured: one run's change of a few
    points is not a significance test), steps, tokens/s, and the loss of a uniform guess."""
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
            cells.append(f'<tr><td class="l">{name}</td><td>{a:.4f}</td><td>{b:.4f}</td></tr>')
    end_val = first_last("val_loss")[1]
    if vocab:
        ratio = f" (end = {end_val / math.log(vocab):.2f} × it)" if end_val is not None else ""
        cells.append(f'<tr><td class="l">uniform guess, ln {vocab}</td><td colspan="2">'
                     f'{math.log(vocab):.4f}{ratio}</td></tr>')
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


def build_report(run_dir: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Write ``report.html`` (self-contained) for ``run_dir`` and return its path."""
    from slamlm import __version__

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder does not exist")
    out = Path(out) if out else run_dir / "report.html"
    training = [s for p in _files(run_dir, "metrics.jsonl") if (s := _training_section(p, run_dir))]
    result_files = _files(run_dir, "results.json")
    evals = [s for p in result_files if (s := eval_section(p, run_dir))]
    compare = comparison_table(result_files, run_dir)
    if compare:
        evals = [compare, "<details><summary>per-model details</summary>", *evals, "</details>"]
    if evals:
        evals = [scope_line(result_files), LEGEND, *evals]
    gens = [s for p in _files(run_dir, "generations.jsonl") if (s := generation_section(p, run_dir))]
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
