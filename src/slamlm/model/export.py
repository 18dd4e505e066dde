"""``slam export``: a checkpoint (ours or slamkit's) -> an HF or slamkit folder + model card.

- ``--format hf``: a folder ``AutoModelForCausalLM.from_pretrained`` loads with the same
  logits (Qwen2 with QKV bias, else Llama; other families as their own HF class);
- ``--format slamkit``: a folder slamkit's ``UnitLM.from_pretrained`` reads (``config.json``
  as slamkit writes it, weights under ``lm.``; see :mod:`slamlm.model.slamkit`).

Both get a ``README.md`` model card: the data (the tokens' ``index.json`` when it is found),
the recipe (headline settings of ``run.yaml``, then all of them), the unit extractor
(encoder, layer, k, k-means hash), the vocabulary, and an eval table (benchmark, pairs,
accuracy, 95% CI, length baselines, learned) from ``--eval results.json`` (repeatable), else
one next to the checkpoint (``<ckpt>/results.json``, ``<ckpt>/eval/results.json``), else those
in the run folder (``run/eval/results.json``, ``run/eval/*/results.json``) that name it.

Example:
    $ slam export run/pretrain/ckpt/step_00017625 --out out/slam_hf --format hf
    $ slam export slprl/slam --out out/slam_sk --format slamkit --eval run/eval/results.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

# eval results beside the checkpoint (taken as they are) ...
RESULTS_NEAR = ("results.json", "eval/results.json")
# ... and in its run folder (run/ckpt/step_N -> run/): taken when they name this checkpoint
RESULTS_IN_RUN = ("eval/results.json", "eval/*/results.json")
# the recipe's headline settings, shown first (every scalar setting follows in a table)
KEY_SETTINGS = ("model.init", "model.shape", "data.context", "train.batch_size",
                "train.precision", "optim.lr", "optim.min_lr", "schedule.max_steps",
                "schedule.budget", "dist.strategy", "train.seed")


@dataclass(frozen=True)
class ExportConfig:
    """``checkpoint`` (folder or hub id) -> ``out`` in ``format``; ``eval`` results for the card."""

    checkpoint: str = ""  # checkpoint folder (slamlm or slamkit) or hub id
    out: str = ""  # folder to write
    format: Literal["hf", "slamkit"] = "hf"  # hf: AutoModelForCausalLM folder; slamkit: UnitLM
    # slam eval results.json files for the card's eval table (repeatable; --results too);
    # none: those beside the checkpoint, or in its run folder's eval/ naming this checkpoint
    eval: list[str] = field(default_factory=list)


def run_folder(ckpt: Path) -> Path | None:
    """``run/`` of ``run/ckpt/step_N`` (None for a checkpoint outside a training run)."""
    return ckpt.parent.parent if ckpt.parent.name == "ckpt" else None


def _same_checkpoint(named: Any, ckpt: Path) -> bool:
    try:
        return Path(str(named)).resolve() == ckpt.resolve()
    except (OSError, ValueError):
        return False


def find_eval_results(ckpt: Path, given: list[str] | str = ()) -> list[tuple[Path, dict[str, Any]]]:
    """(path, results) for the card: ``given``, else :data:`RESULTS_NEAR`, else the run
    folder's :data:`RESULTS_IN_RUN` whose ``checkpoint`` is this one."""
    given = [given] if isinstance(given, str) and given else list(given or [])
    if given:
        for g in given:
            if not Path(g).is_file():
                raise FileNotFoundError(f"--eval {g}: results file does not exist (a slam eval "
                                        f"--out folder holds results.json)")
        return [(Path(g), json.loads(Path(g).read_text())) for g in given]
    near = [(ckpt / p, json.loads((ckpt / p).read_text())) for p in RESULTS_NEAR
            if (ckpt / p).is_file()]
    run = run_folder(ckpt)
    if near or run is None:
        return near[:1]
    found = sorted({p for pat in RESULTS_IN_RUN for p in run.glob(pat)})
    out = [(p, json.loads(p.read_text())) for p in found]
    return [(p, r) for p, r in out if _same_checkpoint(r.get("checkpoint"), ckpt)]


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{100 * float(x):.2f}"


def _ci(ci: Any) -> str:
    return "n/a" if not ci else f"[{100 * float(ci[0]):.1f}, {100 * float(ci[1]):.1f}]"


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


def _setting(run: dict[str, Any], key: str) -> Any:
    node: Any = run
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def tokens_index(ckpt: Path, run: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
    """(folder, index.json) of the training tokens named in ``run.yaml``, when it is found
    (as written, or relative to the run folder)."""
    tokens = _setting(run, "data.tokens")
    if not tokens:
        return None
    base = run_folder(ckpt)
    for cand in (Path(str(tokens)), *([base / str(tokens)] if base else [])):
        if (cand / "index.json").is_file():
            return cand, json.loads((cand / "index.json").read_text())
    return None


def _data_lines(ckpt: Path, run: dict[str, Any], train: dict[str, Any]) -> list[str]:
    tokens = _setting(run, "data.tokens")
    out = [f"- training tokens: `{tokens or 'not recorded'}`",
           f"- steps: {train.get('step', 'n/a')}, tokens seen: {train.get('tokens', 'n/a')}"]
    found = tokens_index(ckpt, run)
    if found is None:
        return out + ([f"- (no index.json found under `{tokens}`)"] if tokens else [])
    folder, idx = found
    for split, d in (idx.get("splits") or {}).items():
        out.append(f"- {split}: {d.get('n_tokens', 'n/a')} tokens in {d.get('n_docs', 'n/a')} "
                   f"documents")
    out += [f"- packed from `{idx.get('source', 'n/a')}` ({idx.get('n_files', 'n/a')} units "
            f"files, {idx.get('n_failures', 0)} failed records), units hash "
            f"`{idx.get('units_hash', 'n/a')}`, context {idx.get('context', 'n/a')}, val "
            f"fraction {idx.get('val_fraction', 'n/a')}"]
    return out


def units_identity(meta: dict[str, Any], ckpt: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The unit extractor: the checkpoint's, else the ``identity.json`` of the units folder the
    training tokens were packed from."""
    if meta.get("units"):
        return dict(meta["units"])
    found = tokens_index(ckpt, run)
    src = Path(str(found[1].get("source", ""))) if found else None
    if src and (src / "identity.json").is_file():
        return {**json.loads((src / "identity.json").read_text()),
                "from": str(src / "identity.json")}
    return {}


def _eval_lines(results: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    rows = []
    for path, res in results:
        for name, d in (res.get("benchmarks") or {}).items():
            rows.append((name, d.get("n_pairs", ""), _pct(d.get("accuracy_mean")),
                         _ci(d.get("ci95_mean") or d.get("ci95")), _pct(d.get("accuracy_sum")),
                         _pct(d.get("length_shorter")), _pct(d.get("length_longer")),
                         "n/a" if d.get("learned") is None else str(d["learned"]).lower(),
                         f"`{path}`"))
    if not rows:
        return ["No eval results were given (`slam export --eval results.json`)."]
    return [*_table(rows, ("benchmark", "pairs", "accuracy % (mean log-prob, primary)",
                           "95% CI", "accuracy % (summed)", "shorter %", "longer %", "learned",
                           "results")), "",
            "95% CI: Wilson interval over independent keys; shorter/longer: always picking the "
            "member with fewer/more tokens; learned: CI above chance and accuracy above both."]


def model_card(meta: dict[str, Any], ckpt: Path, results: Any, fmt: str) -> str:
    """A markdown model card for an exported checkpoint. ``results``: one results dict, or
    a list of (path, results) from :func:`find_eval_results`.

    Example:
        >>> card = model_card({"vocab": {"n_units": 500}}, Path("ck"), None, "hf")
        >>> "## Vocabulary" in card and "500 units" in card
        True
    """
    from slamlm.vocab import UnitVocab

    if isinstance(results, dict):
        results = [(Path("results.json"), results)]
    init = meta.get("init") or {}
    vocab = UnitVocab.from_dict(meta.get("vocab") or {})
    train, run = meta.get("train") or {}, _run_yaml(ckpt)
    units = units_identity(meta, ckpt, run)
    load = ("AutoModelForCausalLM.from_pretrained(folder)" if fmt == "hf"
            else "slamkit.model.UnitLM.from_pretrained(folder)")
    out = ["---", "library_name: transformers", "tags: [speech-language-model, slamlm]", "---",
           "", "# Speech language model (slamlm)", "",
           f"A decoder-only LM over discrete speech units, exported from `{ckpt}` by "
           f"`slam export --format {fmt}`. Load it with `{load}`.", "", "## Data", ""]
    out += [*_data_lines(ckpt, run, train), ""]
    out += ["## Recipe", "", f"- init: {init.get('kind', 'unknown')}"
            + (f" from `{init['source']}`" if init.get("source") else "")
            + (f", unit rows `{init['embed_init']}`" if init.get("embed_init") else "")]
    out += [f"- {k}: `{_setting(run, k)}`" for k in KEY_SETTINGS if _setting(run, k) is not None]
    out += [""]
    rows = _recipe_rows(run)
    out += (["<details><summary>every setting (run.yaml)</summary>", "", *_table(
        rows, ("setting", "value")), "", "</details>"] if rows
            else ["(no run.yaml beside the checkpoint)"])
    out += ["", "## Units", ""]
    if units:
        out += [f"- encoder `{units.get('encoder')}`, layer {units.get('layer')}, k "
                f"{units.get('k')}, k-means hash `{units.get('kmeans_hash')}`"]
        out += [f"- {k}: `{v}`" for k, v in units.items()
                if k not in ("encoder", "layer", "k", "kmeans_hash")]
    else:
        out += [f"- not recorded. {init.get('units_hint', '')}".rstrip()]
    out += ["", "## Vocabulary", "",
            f"{vocab.n_units} units; ids: pad {vocab.pad_id}, bos {vocab.bos_id}, eos "
            f"{vocab.eos_id}, unit u = u + {vocab.unit_offset}"
            + (" (slamkit layout: one `<S>` token is bos and eos)" if vocab.bos_id == vocab.eos_id
               else "") + ".", "", "## Evaluation", ""]
    out += _eval_lines(results or [])
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
    card = {"README.md": model_card(meta, ckpt, find_eval_results(ckpt, cfg.eval), cfg.format)}
    if cfg.format == "hf":
        vocab = UnitVocab.from_dict(meta["vocab"]) if meta.get("vocab") else None
        return export_hf(model, cfg.out, vocab, extra_files=card)
    if cfg.format == "slamkit":
        return save_slamkit(model, meta, cfg.out, extra_files=card)
    raise ValueError(f"--format must be hf or slamkit, got {cfg.format!r}")
