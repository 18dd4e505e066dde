"""``slam export``: a checkpoint (ours or slamkit's) -> an HF or slamkit folder + model card.

- ``--format hf``: a folder ``AutoModelForCausalLM.from_pretrained`` loads with the same
  logits (Qwen2 with QKV bias, else Llama; other families as their own HF class);
- ``--format slamkit``: a folder slamkit's ``UnitLM.from_pretrained`` reads (``config.json``
  as slamkit writes it, weights under ``lm.``; see :mod:`slamlm.model.slamkit`).

Both get a ``README.md`` model card: data, recipe, unit extractor, vocabulary, and an eval
table from ``--results`` (an ``slam eval`` results.json) or one found next to the checkpoint
(``<ckpt>/results.json``, ``<ckpt>/eval/results.json``).

Example:
    $ slam export run/pretrain/ckpt/step_00017625 --out out/slam_hf --format hf
    $ slam export slprl/slam --out out/slam_sk --format slamkit --results run/eval/results.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

RESULTS_NEAR = ("results.json", "eval/results.json")


@dataclass(frozen=True)
class ExportConfig:
    """``checkpoint`` (folder or hub id) -> ``out`` in ``format``; ``results`` for the card."""

    checkpoint: str = ""  # checkpoint folder (slamlm or slamkit) or hub id
    out: str = ""  # folder to write
    format: Literal["hf", "slamkit"] = "hf"  # hf: AutoModelForCausalLM folder; slamkit: UnitLM
    results: str = ""  # slam eval results.json; "" = look next to the checkpoint


def find_results(ckpt: Path, given: str = "") -> dict[str, Any] | None:
    """The eval results for the card: ``given``, else the first of :data:`RESULTS_NEAR`."""
    paths = [Path(given)] if given else [ckpt / p for p in RESULTS_NEAR]
    for p in paths:
        if p.is_file():
            return json.loads(p.read_text())
    if given:
        raise FileNotFoundError(f"{given}: results file does not exist")
    return None


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.2f}"


def _table(rows: list[tuple[str, ...]], head: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def _run_yaml(ckpt: Path) -> dict[str, Any]:
    import yaml

    p = ckpt / "run.yaml"
    return (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}


def _recipe_rows(run: dict[str, Any]) -> list[tuple[str, ...]]:
    """``section.key`` / value rows of the scalar settings in ``run.yaml``."""
    rows = []
    for sec, vals in run.items():
        if isinstance(vals, dict):
            rows += [(f"{sec}.{k}", f"`{v}`") for k, v in vals.items()
                     if not isinstance(v, (dict, list))]
    return rows


def model_card(meta: dict[str, Any], ckpt: Path, results: dict[str, Any] | None, fmt: str) -> str:
    """A markdown model card for an exported checkpoint.

    Example:
        >>> card = model_card({"vocab": {"n_units": 500}}, Path("ck"), None, "hf")
        >>> "## Vocabulary" in card and "500 units" in card
        True
    """
    from slamlm.vocab import UnitVocab

    init, units = meta.get("init") or {}, meta.get("units") or {}
    vocab = UnitVocab.from_dict(meta.get("vocab") or {})
    train, run = meta.get("train") or {}, _run_yaml(ckpt)
    load = ("AutoModelForCausalLM.from_pretrained(folder)" if fmt == "hf"
            else "slamkit.model.UnitLM.from_pretrained(folder)")
    out = ["---", "library_name: transformers", "tags: [speech-language-model, slamlm]", "---",
           "", "# Speech language model (slamlm)", "",
           f"A decoder-only LM over discrete speech units, exported from `{ckpt}` by "
           f"`slam export --format {fmt}`. Load it with `{load}`.", "", "## Data", ""]
    data = (run.get("data") or {}).get("tokens") or (run.get("data") if isinstance(
        run.get("data"), str) else None)
    out += [f"- training tokens: `{data or 'not recorded'}`",
            f"- steps: {train.get('step', 'n/a')}, tokens seen: {train.get('tokens', 'n/a')}", ""]
    out += ["## Recipe", "", f"- init: {init.get('kind', 'unknown')}"
            + (f" from `{init['source']}`" if init.get("source") else "")
            + (f", unit rows `{init['embed_init']}`" if init.get("embed_init") else ""), ""]
    rows = _recipe_rows(run)
    out += (_table(rows, ("setting", "value")) if rows else ["(no run.yaml beside the checkpoint)"])
    out += ["", "## Units", ""]
    out += ([f"- {k}: `{v}`" for k, v in units.items()] if units
            else [f"- not recorded. {init.get('units_hint', '')}".rstrip()])
    out += ["", "## Vocabulary", "",
            f"{vocab.n_units} units; ids: pad {vocab.pad_id}, bos {vocab.bos_id}, eos "
            f"{vocab.eos_id}, unit u = u + {vocab.unit_offset}"
            + (" (slamkit layout: one `<S>` token is bos and eos)" if vocab.bos_id == vocab.eos_id
               else "") + ".", "", "## Evaluation", ""]
    benches = (results or {}).get("benchmarks") or {}
    rows = [(n, _pct(d.get("accuracy_mean")), _pct(d.get("accuracy_sum")), d.get("n_pairs", ""))
            for n, d in benches.items()]
    out += (_table(rows, ("benchmark", "accuracy % (mean log-prob, primary)",
                          "accuracy % (summed log-prob)", "pairs"))
            if rows else ["No eval results were given (`slam export --results results.json`)."])
    return "\n".join(out) + "\n"


def run_export(cfg: ExportConfig) -> Path:
    """Load ``cfg.checkpoint`` and write ``cfg.out`` in ``cfg.format``; returns ``cfg.out``."""
    from slamlm.model.checkpoint import load_checkpoint, resolve_checkpoint
    from slamlm.model.hf import export_hf
    from slamlm.model.slamkit import save_slamkit
    from slamlm.vocab import UnitVocab

    if not cfg.checkpoint or not cfg.out:
        raise ValueError("slam export needs a checkpoint and --out")
    ckpt = resolve_checkpoint(cfg.checkpoint)
    model, meta = load_checkpoint(ckpt)
    card = {"README.md": model_card(meta, ckpt, find_results(ckpt, cfg.results), cfg.format)}
    if cfg.format == "hf":
        vocab = UnitVocab.from_dict(meta["vocab"]) if meta.get("vocab") else None
        return export_hf(model, cfg.out, vocab, extra_files=card)
    if cfg.format == "slamkit":
        return save_slamkit(model, meta, cfg.out, extra_files=card)
    raise ValueError(f"--format must be hf or slamkit, got {cfg.format!r}")
