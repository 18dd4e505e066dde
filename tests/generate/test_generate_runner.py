"""slam generate end to end: audio / unit prompts -> wavs + generations.jsonl, both vocoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from slamlm.cli import main
from slamlm.config import build_config
from slamlm.generate.runner import GenerateConfig, run_generate
from slamlm.io import read_jsonl


def _cfg(**kw):
    base = {"device": "cpu", "sampling": {"max_new_tokens": 12, "batch_size": 4}}
    base.update(kw)
    return build_config(GenerateConfig, base=base)


def test_generate_mel_vocoder_from_audio(mel_checkpoint, tmp_path):
    ckpt, prompt, ex = mel_checkpoint
    out = run_generate(_cfg(checkpoint=str(ckpt), out=str(tmp_path / "gen"), prompts=[str(prompt)],
                            prompt_seconds=2.0, vocoder="mel"))
    recs = list(read_jsonl(out / "generations.jsonl"))
    assert len(recs) == 1 and recs[0]["id"] == "prompt"
    r = recs[0]
    assert 1 <= len(r["generated_units"]) <= 12 and max(r["generated_units"]) < 24
    assert sum(r["prompt_durations"]) == 50  # 2 s at 25 Hz
    assert r["sampling"]["temperature"] == 0.8 and r["vocoder"] == "mel"
    wav, sr = sf.read(out / r["wav"])
    mean_d = max(1, round(np.mean(r["prompt_durations"])))
    assert sr == 16000 and len(wav) == (50 + mean_d * len(r["generated_units"])) * 640
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0.01
    assert (out / "config.yaml").is_file()
    # prompt units equal what the extractor gives for the first 2 s
    from slamlm.audio import load_audio
    from slamlm.units.extractor import dedup

    assert r["prompt_units"] == dedup(ex.encode([load_audio(prompt)[:32000]])[0])[0].tolist()
    # resume: a second run skips the finished prompt (file untouched)
    before = (out / "generations.jsonl").read_text()
    run_generate(_cfg(checkpoint=str(ckpt), out=str(out), prompts=[str(prompt)], vocoder="mel"))
    assert (out / "generations.jsonl").read_text() == before


def test_generate_hifigan_from_unit_prompts_via_cli(mel_checkpoint, tmp_path, capsys):
    from slamlm.generate.hifigan import CodeHiFiGAN, save_code_hifigan

    ckpt, _, _ = mel_checkpoint
    torch.manual_seed(0)
    hcfg = {"upsample_rates": [5, 4, 4, 8], "upsample_kernel_sizes": [11, 8, 8, 16],
            "upsample_initial_channel": 32, "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 3, 5]], "num_embeddings": 24, "embedding_dim": 8,
            "model_in_dim": 8, "dur_predictor_params": {
                "encoder_embed_dim": 8, "var_pred_hidden_dim": 8, "var_pred_kernel_size": 3,
                "var_pred_dropout": 0.5}}
    save_code_hifigan(CodeHiFiGAN(hcfg), tmp_path / "voc", step=500000)
    units = tmp_path / "units.jsonl"
    units.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a/x", "units": [1, 1, 5, 7, 7, 7, 3]},
        {"id": "b", "units": [2, 4, 6], "durations": [3, 2, 1]},
        {"id": "bad", "units": []},
        {"id": "big", "units": [3, 99]},
    ]) + "\n")
    rc = main(["generate", str(ckpt), "--prompt-units", str(units), "--out", str(tmp_path / "g"),
               "--vocoder", f"hifigan:{tmp_path / 'voc'}", "--max-new-tokens", "6",
               "--temperature", "0", "--device", "cpu"])
    assert rc == 0
    recs = {r["id"]: r for r in read_jsonl(tmp_path / "g" / "generations.jsonl")}
    assert set(recs) == {"a/x", "b"}
    assert recs["a/x"]["prompt_units"] == [1, 5, 7, 3] and recs["a/x"]["prompt_durations"] == [2, 1, 3, 1]
    assert recs["b"]["sampling"]["temperature"] == 0.0
    for r in recs.values():
        wav, sr = sf.read(tmp_path / "g" / r["wav"])
        assert sr == 16000 and len(wav) % 640 == 0 and len(wav) >= 640 * len(r["prompt_units"])
    fails = list(read_jsonl(tmp_path / "g" / "failures.jsonl"))
    assert [f["id"] for f in fails] == ["bad", "big"]
    assert "unit 99 is outside the vocabulary of 24 units" in fails[1]["reason"]


def test_generate_config_errors(mel_checkpoint, tmp_path):
    ckpt, prompt, _ = mel_checkpoint
    with pytest.raises(ValueError, match="not both"):
        run_generate(_cfg(checkpoint=str(ckpt), out=str(tmp_path), prompts=[str(prompt)],
                          prompt_units="x.jsonl"))
    missing = tmp_path / "missing.wav"
    out = run_generate(_cfg(checkpoint=str(ckpt), out=str(tmp_path / "m"), prompts=[str(missing)]))
    assert [f["id"] for f in read_jsonl(out / "failures.jsonl")] == ["missing"]
    with pytest.raises(ValueError, match="missing"):
        run_generate(_cfg(checkpoint=str(ckpt), out=str(tmp_path / "s"), prompts=[str(missing)],
                          strict=True))
