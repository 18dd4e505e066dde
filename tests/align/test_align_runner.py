"""slam dpo end to end on a toy preference set: rewards separate, held-out margin grows,
resume continues, the final checkpoint loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from slamlm.align.runner import DPOConfig, batch_indices, run_dpo
from slamlm.config import build_config, replace_nested
from slamlm.model import SpeechLM, named_shape
from slamlm.model.checkpoint import load_checkpoint, save_checkpoint
from slamlm.vocab import UnitVocab

V = UnitVocab(n_units=10)


@pytest.fixture
def toy(tmp_path):
    """Chosen continues the prompt's counting pattern (a, a+1, ...); rejected is random."""
    rng = np.random.default_rng(0)
    recs = []
    for i in range(160):
        a = int(rng.integers(10))
        pat = [(a + k) % 10 for k in range(12)]
        recs.append({"id": f"t{i}", "prompt_units": pat[:6], "chosen_units": pat[6:],
                     "rejected_units": rng.integers(0, 10, 6).tolist()})
    recs.append({"id": "broken", "prompt_units": [1], "chosen_units": [99], "rejected_units": [2]})
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    torch.manual_seed(0)
    init = save_checkpoint(SpeechLM(named_shape("tiny", vocab_size=V.size)),
                           {"vocab": V, "units": {"encoder": "mel"}}, tmp_path / "init")
    return tmp_path, data, init


def _cfg(tmp_path, data, init, **kw):
    base = dict(checkpoint=str(init), data=str(data), out=str(tmp_path / "run"), lr=1e-3,
                batch_pairs=16, heldout_fraction=0.2, eval_every=10, log_every=5,
                warmup=0.0, warmup_steps=0, threads=1, save_every=10)
    return build_config(DPOConfig, base={**base, **kw})


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_toy_preferences_learned_and_heldout_margin_grows(toy):
    tmp_path, data, init = toy
    final = run_dpo(_cfg(tmp_path, data, init, max_steps=20))
    run = tmp_path / "run"
    recs = _metrics(run)
    held = [r for r in recs if "heldout_reward_margin" in r]
    train = [r for r in recs if "reward_accuracy" in r]
    # step 0: policy == reference, so every held-out margin is exactly 0 (ties count 0.5)
    assert held[0]["step"] == 0 and held[0]["heldout_reward_margin"] == 0.0
    assert held[0]["heldout_reward_accuracy"] == 0.5
    assert train[0]["step"] == 1 and train[0]["loss"] == pytest.approx(np.log(2), abs=1e-4)
    assert train[-1]["step"] == 20 and train[-1]["reward_accuracy"] >= 0.9
    assert train[-1]["loss"] < 0.55
    assert held[-1]["step"] == 20 and held[-1]["heldout_reward_accuracy"] >= 0.9
    assert held[-1]["heldout_reward_margin"] > 0.3
    assert held[-1]["heldout_reward_margin"] > held[1]["heldout_reward_margin"] > 0
    for key in ("logp_chosen", "logp_rejected", "reward_margin", "lr", "grad_norm"):
        assert key in train[-1]
    # the bad record is logged, the job went on
    fails = [json.loads(x) for x in (run / "failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in fails] == ["broken"] and "unit 99" in fails[0]["reason"]
    summary = json.loads((run / "data_summary.json").read_text())
    assert summary["n_pairs"] == 160 and summary["n_failed"] == 1
    # final checkpoint: loadable, trained, carries vocab/units
    assert final.name == "step_00000020" and (run / "final.txt").read_text().strip() == final.name
    model, meta = load_checkpoint(final)
    base, _ = load_checkpoint(init)
    assert meta["vocab"]["n_units"] == 10 and meta["units"] == {"encoder": "mel"}
    assert meta["dpo"]["step"] == 20
    diff = (model.model.embed_tokens.weight - base.model.embed_tokens.weight).abs().max()
    assert diff > 1e-4
    assert (run / "reference" / "train" / "ref_logps.npy").is_file()


def test_resume_after_interruption_matches_uninterrupted(toy):
    import shutil

    tmp_path, data, init = toy
    kw = dict(max_steps=6, eval_every=100, save_every=2, heldout_fraction=0.0, batch_pairs=8)
    straight = run_dpo(_cfg(tmp_path, data, init, out=str(tmp_path / "a"), **kw))
    run_b = tmp_path / "b"
    run_dpo(_cfg(tmp_path, data, init, out=str(run_b), **kw))
    ckpts = sorted(p.name for p in (run_b / "ckpt").iterdir())
    assert ckpts == ["step_00000002", "step_00000004", "step_00000006"]
    # "kill" the run after step 4: drop the newer checkpoint, leave a half-written one
    shutil.rmtree(run_b / "ckpt" / "step_00000006")
    (run_b / "ckpt" / "step_00000007").mkdir()
    ref_npy = run_b / "reference" / "train" / "ref_logps.npy"
    t_ref = ref_npy.stat().st_mtime_ns
    resumed = run_dpo(_cfg(tmp_path, data, init, out=str(run_b), **kw))
    assert ref_npy.stat().st_mtime_ns == t_ref  # reference not recomputed
    assert resumed.name == straight.name == "step_00000006"
    a, _ = load_checkpoint(straight)
    b, _ = load_checkpoint(resumed)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    steps = [r["step"] for r in _metrics(run_b) if "reward_accuracy" in r]
    assert steps == [1, 5, 6]  # each step once: the resumed run (from 4) dropped the killed
    # run's rows past step 4 before writing 5 and 6 again
    # re-running a finished run does nothing and returns the same checkpoint
    assert run_dpo(_cfg(tmp_path, data, init, out=str(run_b), **kw)) == resumed


def test_batch_indices_cover_each_epoch_once():
    n, b = 10, 4
    idx = np.concatenate([batch_indices(s, n, b, seed=3) for s in range(5)])  # 20 = 2 epochs
    assert sorted(idx[:10].tolist()) == list(range(10))
    assert sorted(idx[10:20].tolist()) == list(range(10))
    assert not np.array_equal(idx[:10], idx[10:20])
    assert np.array_equal(batch_indices(2, n, b, seed=3), idx[8:12])


def test_cli_runs_dpo_with_overrides(toy, capsys):
    from slamlm.cli import main

    tmp_path, data, init = toy
    out = tmp_path / "cli"
    rc = main(["-q", "dpo", str(init), "--data", str(data), "--out", str(out),
               "--set", "max_steps=2", "--set", "dpo.beta=0.2", "--set", "threads=1",
               "--set", "batch_pairs=4", "--set", "row_tokens=128"])  # packed rows path
    assert rc == 0
    assert "step_00000002" in capsys.readouterr().out
    cfg = (out / "config.yaml").read_text()
    assert "beta: 0.2" in cfg and "lr: 5.0e-05" in cfg and "row_tokens: 128" in cfg
    assert main(["-q", "dpo", str(init), "--data", str(tmp_path / "nope.jsonl"),
                 "--out", str(out / "x")]) == 1
    assert "nope.jsonl" in capsys.readouterr().err


def test_audio_triplets_encoded_with_the_checkpoint_extractor(tmp_path, sine_wav):
    from slamlm.units.extractor import UnitExtractor, dedup
    from slamlm.units.kmeans import KMeans, save_kmeans

    torch.manual_seed(0)
    km = KMeans(torch.randn(10, 80), encoder="mel", layer=0)
    save_kmeans(km, tmp_path / "km.safetensors")
    ex = UnitExtractor.load("mel", tmp_path / "km.safetensors")
    init = save_checkpoint(SpeechLM(named_shape("tiny", vocab_size=V.size)),
                           {"vocab": V, "units": ex.identity()}, tmp_path / "init")
    recs = []
    for i in range(4):
        names = [sine_wav(0.4 + 0.1 * i, name=f"wav/{i}_{r}.wav", freq=150 + 90 * k + 30 * i)
                 for k, r in enumerate(("p", "c", "r"))]
        recs.append({"id": f"s{i}", **{f"{r}_path": str(p.relative_to(tmp_path)) for r, p in
                                       zip(("prompt", "chosen", "rejected"), names)}})
    recs.append({**recs[0], "id": "lost", "rejected_path": "wav/none.wav"})
    data = tmp_path / "trip.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = _cfg(tmp_path, data, init, max_steps=1, batch_pairs=2, heldout_fraction=0.0)
    run_dpo(cfg)
    run = tmp_path / "run"
    z = np.load(run / "pairs.npz")
    assert z["ids"].tolist() == ["s0", "s1", "s2", "s3"]
    want = [dedup(u)[0] for u in ex.encode_paths([tmp_path / "wav/0_p.wav",
                                                 tmp_path / "wav/0_c.wav"])]
    n_p, n_c = len(want[0]) + 1, len(want[1]) + 1
    assert z["prompt"][:n_p].tolist() == [V.bos_id, *(want[0] + 3).tolist()]
    assert z["chosen"][:n_c].tolist() == [*(want[1] + 3).tolist(), V.eos_id]
    fails = [json.loads(x) for x in (run / "failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in fails] == ["lost"] and "none.wav" in fails[0]["reason"]
    t = (run / "pairs.npz").stat().st_mtime_ns
    run_dpo(replace_nested(cfg, **{"schedule.max_steps": 2}))
    assert (run / "pairs.npz").stat().st_mtime_ns == t  # tokenised pairs reused


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_dpo_two_processes_match_one(toy, strategy):
    """DPO runs under torchrun through the shared loop: 2 gloo processes (each half of every
    batch of pairs) log the same losses as 1 process, and rank 0 alone writes the checkpoint."""
    import os
    import subprocess
    import sys

    tmp_path, data, init = toy
    args = ["dpo", str(init), "--data", str(data), "--set", "max_steps=3", "--set", "lr=1e-3",
            "--set", "warmup_steps=0", "--set", "batch_pairs=8", "--set", "threads=1",
            "--set", "heldout_fraction=0.1", "--set", "log_every=1", "--set", "device=cpu",
            "--set", "train.precision=fp32",  # equal math; bf16 sums differ by split
            "--set", f"dist.strategy={strategy}"]
    from slamlm.cli import main

    assert main(["-q", *args, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "slamlm.cli", "-q", *args, "--out", str(tmp_path / "two")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    one, two = (_metrics(tmp_path / r) for r in ("one", "two"))
    pick = lambda rows, k: [r[k] for r in rows if "reward_accuracy" in r]  # noqa: E731
    assert pick(one, "step") == pick(two, "step") == [1, 2, 3]
    for key in ("loss", "reward_margin", "grad_norm"):
        assert pick(two, key) == pytest.approx(pick(one, key), abs=1e-5), key
    held = lambda rows: [r["heldout_reward_margin"] for r in rows if "heldout_reward_margin" in r]  # noqa: E731
    assert held(two) == pytest.approx(held(one), abs=1e-5) and len(held(one)) >= 2
    model, meta = load_checkpoint(tmp_path / "two" / "ckpt" / "step_00000003")
    assert meta["dpo"]["step"] == 3
    assert (tmp_path / "two" / "final.txt").read_text().strip() == "step_00000003"
