"""``slam generate CKPT --prompt a.wav [--prompt b.wav] | --prompt-units units.jsonl --out DIR``.

Example:
    $ slam generate run/ckpt/step_00001000 --prompt a.wav --out run/gen --vocoder mel
    $ slam generate CKPT --prompt-units prompts.jsonl --out gen --temperature 0.8 --top-k 25 \\
          --repetition-penalty 1.1 --metrics --asr pocketsphinx --lm smollm2
    $ slam generate CKPT --prompt a.wav --out gen --vocoder hifigan:run/voc_spk --speaker-wav v.wav
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slamlm.cli_adapter import Command

SAMPLING = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed",
            "batch_size")

COMMAND = Command(
    "generate", "continue audio prompts with a SpeechLM and vocode",
    config="slamlm.generate.runner:GenerateConfig", run="slamlm.generate.runner:run_generate",
    positional=("checkpoint",), show="slamlm.generate.cli:show", description=__doc__,
    flags={"--prompt": "prompts", **{"--" + k.replace("_", "-"): f"sampling.{k}" for k in SAMPLING}})


def show(out: Path, cfg: Any) -> None:
    """The metrics summary (with ``--metrics``), else the output folder."""
    if cfg.metrics:
        res = json.loads((Path(out) / "genmetrics.json").read_text())
        print(json.dumps({k: res[k] for k in ("genppl", "auto_bleu", "genppl_token_weighted",
                                              "auto_bleu_ws_pct", "n")}))
        return
    print(out)
