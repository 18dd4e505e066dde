"""slamkit checkpoints in (run in their vocabulary), ours out (`slam export`).

Checkpoints and scoring follow slamkit's code (see ``slamkit_helpers``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from slamkit_helpers import (
    N_UNITS,
    load_like_slamkit,
    slamkit_loglik,
    slamkit_tokenizer,
    write_slamkit_ckpt,
)

from slamlm.cli import main
from slamlm.config import build_config
from slamlm.eval.pairs import Pair
from slamlm.eval.runner import score_benchmark
from slamlm.model import load_checkpoint, save_checkpoint
from slamlm.model.checkpoint import CheckpointError, read_meta
from slamlm.model.config import named_shape
from slamlm.model.slamkit import save_slamkit
from slamlm.model.transformer import SpeechLM
from slamlm.vocab import UnitVocab


def _units(seed: int, n: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        u = rng.integers(0, N_UNITS, int(rng.integers(5, 40)))
        out.append([int(x) for i, x in enumerate(u) if i == 0 or x != u[i - 1]])  # deduplicated
    return out


@pytest.mark.parametrize("tied", [True, False])
def test_slamkit_scores_match_their_formula(tmp_path, tied):
    hf = write_slamkit_ckpt(tmp_path / "sk", tied=tied)
    model, meta = load_checkpoint(tmp_path / "sk")
    vocab = UnitVocab.from_dict(meta["vocab"])
    assert vocab == UnitVocab.slamkit(N_UNITS) and model.config.vocab_size == 502
    assert model.config.rope_theta == 10000.0 and model.config.tie_embeddings == tied
    assert meta["init"]["kind"] == "slamkit" and "units_hint" in meta["init"]
    units = _units(0, 12)
    pairs = [Pair(f"p{i}", units[2 * i], units[2 * i + 1]) for i in range(6)]
    records, _ = score_benchmark(model, vocab, pairs, None, "t")
    ours = np.array([[r["logp_pos_mean"], r["logp_neg_mean"]] for r in records]).ravel()
    theirs = slamkit_loglik(hf, units)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert read_meta(tmp_path / "sk")["vocab"] == meta["vocab"]


def test_tokeniser_config_and_ids(tmp_path):
    write_slamkit_ckpt(tmp_path / "sk", tokeniser=True)
    vocab = UnitVocab.from_dict(read_meta(tmp_path / "sk")["vocab"])
    ids = slamkit_tokenizer().encode("<Un3><Un49><Un499>").ids
    assert ids == [vocab.bos_id, *vocab.encode_units([3, 49, 499]).tolist(), vocab.eos_id]


def _logits(model, ids):
    with torch.no_grad():
        return model(torch.as_tensor(ids))


def test_round_trip_ours_slamkit_ours(tmp_path):
    torch.manual_seed(1)
    ours = SpeechLM(named_shape("tiny", vocab_size=N_UNITS + 3)).eval()
    meta = {"vocab": UnitVocab(N_UNITS).to_dict(), "units": {"encoder": "mel", "k": N_UNITS},
            "init": {"kind": "random"}}
    save_checkpoint(ours, meta, tmp_path / "ours")
    assert main(["export", str(tmp_path / "ours"), "--out", str(tmp_path / "sk"),
                 "--format", "slamkit"]) == 0
    raw = json.loads((tmp_path / "sk/config.json").read_text())
    assert raw["model_type"] == "speech_language_model" and raw["vocab_size"] == N_UNITS + 3
    back, meta2 = load_checkpoint(tmp_path / "sk")
    assert meta2["vocab"] == meta["vocab"] and meta2["units"] == meta["units"]
    assert back.config == ours.config
    ids = [[1, 5, 9, 40, 2, 1, 7]]
    torch.testing.assert_close(_logits(back, ids), _logits(ours, ids), rtol=0, atol=0)

    # without our sidecar the folder runs in slamkit's ids: the same distribution, permuted
    (tmp_path / "sk/slamlm.json").unlink()
    peer, pmeta = load_checkpoint(tmp_path / "sk")
    pv, v = UnitVocab.from_dict(pmeta["vocab"]), UnitVocab(N_UNITS)
    assert pv == UnitVocab.slamkit(N_UNITS)
    seq = [v.bos_id, *v.encode_units([2, 6, 37]).tolist()]
    theirs = _logits(peer, [[pv.bos_id, *pv.encode_units([2, 6, 37]).tolist()]])
    perm = [0, N_UNITS + 2, 1, *range(2, N_UNITS + 2)]  # our row r = their row perm[r]
    torch.testing.assert_close(theirs[..., perm], _logits(ours, [seq]), rtol=1e-5, atol=1e-5)


def test_round_trip_slamkit_ours_slamkit(tmp_path):
    write_slamkit_ckpt(tmp_path / "sk")
    model, meta = load_checkpoint(tmp_path / "sk")
    save_slamkit(model, meta, tmp_path / "sk2")
    raw = json.loads((tmp_path / "sk2/config.json").read_text())
    assert raw["vocab_size"] == 502 and raw["tie_word_embeddings"] is True
    assert raw["base_model_name"] == "Qwen/Qwen2.5-0.5B"
    again, _ = load_checkpoint(tmp_path / "sk2")
    ids = [[1, 2, 30, 501, 1]]
    torch.testing.assert_close(_logits(again, ids), _logits(model, ids), rtol=0, atol=0)
    theirs = load_like_slamkit(tmp_path / "sk2")
    with torch.no_grad():
        torch.testing.assert_close(theirs(torch.tensor(ids)).logits, _logits(model, ids))


@pytest.mark.parametrize("source", ["ours", "slamkit"])
def test_hf_export_loads_with_automodel(tmp_path, source):
    from transformers import AutoModelForCausalLM

    if source == "ours":
        torch.manual_seed(2)
        model = SpeechLM(named_shape("tiny", vocab_size=N_UNITS + 3)).eval()
        save_checkpoint(model, {"vocab": UnitVocab(N_UNITS).to_dict()}, tmp_path / "ck")
    else:
        write_slamkit_ckpt(tmp_path / "ck")
        model, _ = load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck/results.json").write_text(json.dumps(
        {"benchmarks": {"sblimp": {"accuracy_mean": 0.5886, "accuracy_sum": 0.57, "n_pairs": 10}}}))
    assert main(["export", str(tmp_path / "ck"), "--out", str(tmp_path / "hf"),
                 "--format", "hf"]) == 0
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([[1, 5, 9, 40, 7]])
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits.float(), _logits(model, ids), rtol=1e-5, atol=1e-5)
    card = (tmp_path / "hf/README.md").read_text()
    assert "sblimp" in card and "58.86" in card and "Units" in card


def test_not_a_checkpoint_and_vocab_mismatch(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x/config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(CheckpointError, match="neither a SpeechLM checkpoint"):
        load_checkpoint(tmp_path / "x")
    with pytest.raises(CheckpointError, match="config.json: missing"):
        read_meta(tmp_path)
    write_slamkit_ckpt(tmp_path / "sk")
    raw = json.loads((tmp_path / "sk/config.json").read_text())
    (tmp_path / "sk/config.json").write_text(json.dumps({**raw, "vocab_size": 503}))
    with pytest.raises(CheckpointError, match="vocab_size 503 but model.safetensors has 502"):
        load_checkpoint(tmp_path / "sk")
    (tmp_path / "sk/config.json").write_text(json.dumps(raw))
    (tmp_path / "sk/tokeniser_config.json").write_text(json.dumps({"num_units": 1000}))
    with pytest.raises(CheckpointError, match="1000 units from id 2 need 1002 embedding rows"):
        load_checkpoint(tmp_path / "sk")
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint("nobody/no-such-model-here")


def test_slamkit_scores_our_export_as_we_do(tmp_path):
    torch.manual_seed(3)
    ours = SpeechLM(named_shape("tiny", vocab_size=N_UNITS + 3)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    vocab = UnitVocab(N_UNITS)
    save_slamkit(ours, {"vocab": vocab.to_dict()}, tmp_path / "sk")
    hf = load_like_slamkit(tmp_path / "sk")
    units = _units(4, 8)
    pairs = [Pair(f"p{i}", units[2 * i], units[2 * i + 1]) for i in range(4)]
    records, _ = score_benchmark(ours, vocab, pairs, None, "t")
    mine = np.array([[r["logp_pos_mean"], r["logp_neg_mean"]] for r in records]).ravel()
    np.testing.assert_allclose(slamkit_loglik(hf, units), mine, atol=1e-4)
    assert json.loads((tmp_path / "sk/tokeniser_config.json").read_text())["num_units"] == N_UNITS


def test_opt_based_slamkit_ckpt_runs_generic(tmp_path):
    """slamkit's default TWIST/GSLM base is OPT: it loads through the generic HF path."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, OPTConfig

    cfg = OPTConfig(vocab_size=N_UNITS + 2, hidden_size=32, ffn_dim=64, num_hidden_layers=2,
                    num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=32,
                    pad_token_id=0, bos_token_id=1, eos_token_id=1, dropout=0.0)
    torch.manual_seed(5)
    hf = AutoModelForCausalLM.from_config(cfg).eval()
    (tmp_path / "sk").mkdir()
    save_file({f"lm.{k}": v.contiguous() for k, v in hf.state_dict().items()
               if k != "lm_head.weight"}, str(tmp_path / "sk/model.safetensors"))
    (tmp_path / "sk/config.json").write_text(json.dumps({
        "architectures": ["UnitLM"], "base_config": cfg.to_dict(), "model_type":
        "speech_language_model", "base_model_name": "facebook/opt-125m", "vocab_size": 502,
        "tie_word_embeddings": True, "twist_init": True}))
    model, meta = load_checkpoint(tmp_path / "sk")
    assert model.config.family == "hf"
    units = _units(7, 4)
    records, _ = score_benchmark(model, UnitVocab.from_dict(meta["vocab"]),
                                 [Pair("a", units[0], units[1]), Pair("b", units[2], units[3])],
                                 None, "t")
    mine = np.array([[r["logp_pos_mean"], r["logp_neg_mean"]] for r in records]).ravel()
    np.testing.assert_allclose(mine, slamkit_loglik(hf, units), atol=1e-4)
    save_slamkit(model, meta, tmp_path / "sk2")
    theirs = load_like_slamkit(tmp_path / "sk2")
    ids = torch.tensor([[1, 2, 30, 501, 1]])
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids).logits, hf(ids).logits)


def test_generate_and_dpo_run_from_a_slamkit_folder(tmp_path):
    """Consumers take ids from meta["vocab"]: sampling stops at <S>, DPO trains and saves."""
    from slamlm.align.runner import DPOConfig, run_dpo
    from slamlm.generate.sampling import generate

    write_slamkit_ckpt(tmp_path / "sk")
    model, meta = load_checkpoint(tmp_path / "sk")
    vocab = UnitVocab.from_dict(meta["vocab"])
    new = generate(model, [np.r_[vocab.bos_id, vocab.encode_units([3, 9, 27])]],
                   max_new_tokens=12, vocab=vocab, seed=0)[0]
    assert len(new) and vocab.is_unit(new).all()  # units only; <S> ends it (not returned)
    rng = np.random.default_rng(0)
    recs = [{"id": f"t{i}", "prompt_units": rng.integers(0, N_UNITS, 5).tolist(),
             "chosen_units": [1, 2, 3], "rejected_units": rng.integers(0, N_UNITS, 3).tolist()}
            for i in range(24)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    final = run_dpo(build_config(DPOConfig, base=dict(
        checkpoint=str(tmp_path / "sk"), data=str(tmp_path / "p.jsonl"), out=str(tmp_path / "dpo"),
        max_steps=2, batch_pairs=8, heldout_fraction=0.25, threads=1, warmup=0.0)))
    _, dmeta = load_checkpoint(final)
    assert dmeta["vocab"] == vocab.to_dict() and dmeta["init"]["kind"] == "slamkit"


def test_generic_family_of_ours_round_trips_and_scores_alike(tmp_path):
    """A TWIST model on the generic HF path (GPT-2), our layout -> slamkit -> ours."""
    from transformers import AutoModelForCausalLM, GPT2Config

    from slamlm.model import twist_init

    torch.manual_seed(6)
    text = AutoModelForCausalLM.from_config(GPT2Config(vocab_size=600, n_embd=32, n_layer=2,
                                                       n_head=4, n_positions=64))
    vocab = UnitVocab(N_UNITS)
    ours, init = twist_init(text, vocab, "random")
    save_slamkit(ours, {"vocab": vocab.to_dict(), "init": init}, tmp_path / "sk")
    back, meta = load_checkpoint(tmp_path / "sk")
    ids = [[1, 5, 9, 40, 2]]
    torch.testing.assert_close(_logits(back, ids), _logits(ours, ids), rtol=0, atol=0)
    assert json.loads((tmp_path / "sk/config.json").read_text())["base_model_name"] == (
        "openai-community/gpt2")
    units = _units(8, 4)
    records, _ = score_benchmark(ours, vocab, [Pair("a", units[0], units[1]),
                                               Pair("b", units[2], units[3])], None, "t")
    mine = np.array([[r["logp_pos_mean"], r["logp_neg_mean"]] for r in records]).ravel()
    np.testing.assert_allclose(slamkit_loglik(load_like_slamkit(tmp_path / "sk"), units), mine,
                               atol=1e-4)


def test_pretraining_refuses_tokens_in_another_layout(tmp_path):
    """A slamkit model (unit u at u + 2) on our packed tokens (u + 3) is refused by layout,
    even when the sizes agree (packing with one unit fewer gives the same 502 rows)."""
    from slamlm.data import PackConfig, run_pack
    from slamlm.data.synthetic import write_synthetic_units
    from slamlm.train import PretrainConfig, run_pretrain

    write_slamkit_ckpt(tmp_path / "sk")
    write_synthetic_units(tmp_path / "units", 30, k=N_UNITS - 1, mean_len=20, seed=0)
    tokens = run_pack(PackConfig(units=tmp_path / "units", out=tmp_path / "tok",
                                 n_units=N_UNITS - 1, context=32, val_fraction=0.2))
    cfg = build_config(PretrainConfig, base={
        "out": str(tmp_path / "run"), "device": "cpu", "model": {"init": str(tmp_path / "sk")},
        "data": {"tokens": str(tokens), "context": 32},
        "train": {"batch_size": 2, "micro_batch": 2, "max_steps": 1, "budget": None}})
    with pytest.raises(ValueError, match=r"token layout .* differs .*slam init <that folder>"):
        run_pretrain(cfg)
