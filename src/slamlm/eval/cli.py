"""``slam eval CKPT --bench sblimp=PATH ... --out DIR``: modelling benchmarks of a checkpoint.

Likelihood evaluation: for each (positive, negative) pair, score 1 if the model gives the
positive a higher log-prob (mean per token = primary; sum also reported), 0.5 on a tie.
Layouts are detected from the folder.

Example:
    $ slam eval run/ckpt/step_00017625 --bench sblimp=zr2021/syntactic \\
        --bench swuggy=zr2021/lexical --bench ssc=data/sSC --out run/eval
    $ slam eval CKPT --bench sblimp=zr2021/syntactic --out run/eval --shard 0/4   # 4 jobs
    $ slam eval merge run/eval                       # then: check the 4 shards, results.json
    $ slam eval-crossmodal run/il/ckpt/step_00001000 --pairs crossmodal.jsonl --out run/xm
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slamlm.cli_adapter import Command

SCORE = Command(
    "score", "score the benches (the default: slam eval CKPT ... is slam eval score CKPT ...)",
    config="slamlm.eval.runner:EvalConfig", run="slamlm.eval.runner:run_eval",
    positional=("checkpoint",), show="slamlm.eval.cli:show", description=__doc__,
    flags={"--bench": "benches", "--batch-tokens": "max_tokens"})

MERGE = Command(
    "merge", "check the shards of slam eval --shard i/n and write the unsharded results",
    config="slamlm.eval.merge:EvalMergeConfig", run="slamlm.eval.merge:run_eval_merge",
    positional=("out",), show="slamlm.eval.cli:show")

COMMAND = Command(
    "eval", "score sBLIMP / sWUGGY / StoryCloze / SALMon / pairs.jsonl with a checkpoint",
    description=__doc__, default="score", subcommands=(SCORE, MERGE))

CROSSMODAL = Command(
    "eval-crossmodal", "cross-modal StoryCloze (interleaved models)",
    config="slamlm.eval.crossmodal:CrossmodalConfig",
    run="slamlm.eval.crossmodal:run_eval_crossmodal", positional=("checkpoint",))


def show(path: Path, cfg: Any) -> None:
    from slamlm.eval.runner import format_table

    data = json.loads(Path(path).read_text())
    if "shard" in data:  # one shard of a sharded run: nothing to tabulate yet
        print(f"wrote shard {data['shard']}: {path} (join the shards with slam eval merge)")
        return
    print(format_table(data))
    print(f"wrote {path}")
