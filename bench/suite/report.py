"""``suite.md``: the suite's results as one markdown table (no torch import here).

Example:
    >>> suite = {"parts": {"eval": {"status": "ok", "seconds": 3.2, "notes": [], "rows": [
    ...     {"variant": "packed", "status": "ok", "metrics": {"pairs_s": 1234.5}, "info": {}}]}}}
    >>> print(render_markdown(suite, [("eval", "eval scoring")]).splitlines()[-1])
    | 1 eval scoring | ok | packed | 1,234 pairs/s | 3 |
"""

from __future__ import annotations

from typing import Any

METRICS = {  # metric key -> format of its value in the result column
    "tok_s": "{:,.0f} tok/s", "tflops": "{:.3g} TFLOP/s", "pct_peak": "{:.1f}% of peak",
    "mem_gib": "{:.1f} GiB peak", "c_over_a": "(c)/(a) {:.2f}x", "c_over_b": "(c)/(b) {:.2f}x",
    "val_loss": "val loss {:.3f}", "x_realtime": "{:,.0f}x real time", "wall_s": "{:.1f} s",
    "vs_peer": "{:.2f}x the peer", "pairs_s": "{:,.0f} pairs/s",
    "proj_63k_files_s": "63k files: {:.0f} s", "vs_naive": "{:.1f}x naive", "vs_hf": "{:.2f}x HF",
}
INFO = {  # info fields worth a place in the table
    "val_loss_init": "init {:.3f}", "steps": "{:,} steps", "tokens": "{:,} tokens",
    "same_units_as_peer": "same units as the peer: {:.1%}",
    "same_tokens_as_hf": "same tokens as HF: {:.1%}", "max_abs_dlogp_vs_naive": "max abs dlogp vs naive {:.1e}",
    "reason": "{}",
}


def _fmt(fmt: str, value: Any) -> str:
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def result_text(row: dict[str, Any]) -> str:
    """``58,147 tok/s · 133 TFLOP/s · ...`` for one row (status first when not ok)."""
    parts = [] if row.get("status") == "ok" else [f"**{row.get('status')}**"]
    parts += [_fmt(METRICS.get(k, k + " {:.4g}"), v) for k, v in row.get("metrics", {}).items()]
    parts += [_fmt(INFO[k], v) for k, v in row.get("info", {}).items()
              if k in INFO and v is not None]
    return " · ".join(parts)


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def header(suite: dict[str, Any]) -> str:
    dev = next((p["device"] for p in suite["parts"].values() if p.get("device")), {})
    peak = f"dense bf16 peak {dev['peak_tflops']:g} TFLOP/s" if dev.get("peak_tflops") else None
    bits = [dev.get("name"), peak, dev.get("torch") and f"torch {dev['torch']}",
            dev.get("transformers") and f"transformers {dev['transformers']}",
            suite.get("started"), suite.get("dry_run") and "DRY RUN (CPU, tiny shapes)",
            suite.get("wall_s") is not None and f"{suite['wall_s']:.0f} s of a "
                                                  f"{suite.get('budget_s', 0):.0f} s budget"]
    return " · ".join(str(b) for b in bits if b)


def render_markdown(suite: dict[str, Any], parts: list[tuple[str, str]]) -> str:
    """Header line, then one row per measured variant (parts not run yet say so)."""
    lines = ["# slamlm GPU suite", "", header(suite), "",
             "| part | status | variant | result | s |", "|---|---|---|---|---|"]
    for i, (name, title) in enumerate(parts, 1):
        res = suite["parts"].get(name)
        label = f"{i} {title}"
        if res is None:
            lines.append(f"| {label} | not run | | | |")
            continue
        rows = [("setup", note) for note in res.get("notes", [])]
        rows += [(r["variant"], result_text(r)) for r in res.get("rows", [])]
        if res.get("error"):
            rows.append(("error", res["error"]))
        lead = [label, res["status"], f"{res.get('seconds', 0):.0f}"]
        for variant, text in rows or [("", "")]:
            lines.append(f"| {lead[0]} | {lead[1]} | {_cell(variant)} | {_cell(text)} | {lead[2]} |")
            lead = ["", "", ""]  # part, status and seconds on the part's first row only
    return "\n".join(lines)
