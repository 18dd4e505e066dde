"""``slam init``: a SpeechLM checkpoint from a text LM (TWIST) or a random named shape.

Example:
    $ slam init path/to/Qwen2.5-0.5B --out run/init --units 500
    $ slam init SmolLM2-135M-Instruct.Q4_1.gguf --out run/init --embed-init mean
    $ slam init --shape slam-358m --out run/init_random
    $ slam export run/ckpt/step_00017625 --out out/slam_hf --format hf
"""

from __future__ import annotations

from slamlm.cli_adapter import Command

COMMAND = Command("init", "text LM (TWIST) or named shape -> initial SpeechLM checkpoint",
                  config="slamlm.model.init:InitConfig", run="slamlm.model.init:run_init",
                  positional=("text_lm",), description=__doc__)

EXPORT = Command(
    "export", "checkpoint -> HF (AutoModelForCausalLM) or slamkit folder + model card",
    config="slamlm.model.export:ExportConfig", run="slamlm.model.export:run_export",
    positional=("checkpoint",), flags={"--results": "eval"},
    description="A checkpoint (ours or slamkit's, folder or hub id) -> an HF folder that "
                "AutoModelForCausalLM loads with the same logits (--format hf), or a folder "
                "slamkit's UnitLM.from_pretrained reads (--format slamkit); both with a "
                "README.md model card (data, recipe, units identity, eval table from --eval "
                "results.json, repeatable, or results found beside the checkpoint or in its run).\n\nExample:\n"
                "    slam export run/pretrain/ckpt/step_00017625 --out out/slam_hf --format hf")
