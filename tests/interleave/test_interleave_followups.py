"""Interleaving follow-ups: training checkpoints carry the text tokenizer; validation logs a
loss per modality on interleaved shards (and not on plain ones)."""

from __future__ import annotations

import json
import shutil

import pytest
from interleave_helpers import N_UNITS, WORDS, build_text_lm, write_corpus

from slamlm.interleave.model import (
    TOKENIZER_DIR,
    evaluate_modalities,
    interleaved_init,
    load_interleaved,
    save_interleaved,
)
from slamlm.interleave.pack import InterleavePackConfig, run_pack_interleaved
from slamlm.train.config import (
    DataConfig,
    ModelSource,
    OptimConfig,
    PretrainConfig,
    ScheduleConfig,
    TrainConfig,
)
from slamlm.train.pretrain import run_pretrain


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """(init folder, interleaved token folder) over a tiny text LM + synthetic corpus."""
    work = tmp_path_factory.mktemp("il_follow")
    lm = build_text_lm(work / "lm")
    model, meta = interleaved_init(lm, n_units=N_UNITS)
    init = save_interleaved(model, meta, work / "init")
    manifest, units = write_corpus(work / "corpus", n=40)
    tokens = run_pack_interleaved(InterleavePackConfig(
        units=str(units), manifest=str(manifest), out=str(work / "tokens"), init=str(init),
        mix="interleaved=0.6,speech=0.2,text=0.2", mean_words=4.0, val_fraction=0.1,
        context=64))
    return work, init, tokens


def _cfg(out, init, tokens, steps=2, eval_every=1):
    return PretrainConfig(out=out, resume="auto", device="cpu", model=ModelSource(init=str(init)),
                          data=DataConfig(tokens, 64),
                          train=TrainConfig(batch_size=4, micro_batch=4, precision="fp32",
                                            compile=False, eval_windows=4),
                          optim=OptimConfig(lr=1e-3, min_lr=1e-4),
                          schedule=ScheduleConfig(warmup=0.0, warmup_steps=0, max_steps=steps,
                                                  log_every=1, eval_every=eval_every,
                                                  ckpt_every=1, keep_last=0))


def test_step_checkpoint_holds_tokenizer_after_init_is_deleted(packed, tmp_path):
    work, init, tokens = packed
    own = tmp_path / "init"  # a private copy: this test deletes it
    shutil.copytree(init, own)
    want = load_interleaved(own)[2].encode(" the cat sat", add_special_tokens=False)
    last = run_pretrain(_cfg(tmp_path / "run", own, tokens, steps=2))
    assert last.name == "step_00000002"
    for step in (1, 2):
        folder = tmp_path / "run" / "ckpt" / f"step_{step:08d}"
        assert (folder / TOKENIZER_DIR / "tokenizer.json").is_file()
    shutil.rmtree(own)
    model, meta, tok = load_interleaved(last)
    assert tok.encode(" the cat sat", add_special_tokens=False) == want
    assert len(tok) == len(WORDS) + 3 and meta["train"]["step"] == 2
    # resuming from the self-contained checkpoint (init gone) keeps copying the tokenizer
    cfg = _cfg(tmp_path / "run", own, tokens, steps=3)
    last = run_pretrain(cfg)
    assert last.name == "step_00000003" and (last / TOKENIZER_DIR / "tokenizer.json").is_file()
    assert load_interleaved(last)[2].encode(" the cat sat", add_special_tokens=False) == want


def test_validation_logs_loss_per_modality(packed, tmp_path):
    work, init, tokens = packed
    last = run_pretrain(_cfg(tmp_path / "run", init, tokens, steps=2))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_loss" in r]
    assert [r["step"] for r in val] == [0, 1, 2] and val[-1].get("final") is True
    for r in val:
        for k in ("val_loss_speech", "val_loss_text", "val_loss_markers"):
            assert 0.0 < r[k] < 20.0, (k, r)
    # the same numbers as the standalone evaluator over the same (first 4) windows
    model = load_interleaved(last)[0]
    ref = evaluate_modalities(model, tokens, "val", context=64, micro_batch=4, max_windows=4)
    assert val[-1]["val_loss"] == pytest.approx(ref["all"], rel=1e-4)
    assert val[-1]["val_loss_speech"] == pytest.approx(ref["unit"], rel=1e-4)
    assert val[-1]["val_loss_text"] == pytest.approx(ref["text"], rel=1e-4)
    assert val[-1]["val_loss_markers"] == pytest.approx(ref["marker"], rel=1e-4)
    # the training rows are unchanged (no per-modality cost in the step)
    train_rows = [r for r in rows if "loss" in r]
    assert train_rows and not any(k.startswith("val_loss_") for r in train_rows for k in r)


def test_plain_shards_log_only_val_loss(packed, tmp_path):
    work, init, tokens = packed
    plain = tmp_path / "tokens"
    shutil.copytree(tokens, plain)
    for split in ("train", "val"):
        (plain / f"{split}_modality.npy").unlink()
    run_pretrain(_cfg(tmp_path / "run", init, plain, steps=1))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if "val_loss" in r]
    assert val and all(set(r) <= {"step", "val_loss", "final"} for r in val)


def test_synth_benchmark_words_feed_crossmodal_pairs(tmp_path):
    """`slam synth benchmarks` keeps StoryCloze word timings; pairs_from_benchmark uses them."""
    import numpy as np

    from slamlm.cli import main
    from slamlm.eval.crossmodal import pairs_from_benchmark, read_crossmodal
    from slamlm.interleave.spans import word_unit_spans
    from slamlm.io import read_jsonl, write_jsonl
    from slamlm.synth.tts import text_words

    bench = tmp_path / "bench"
    assert main(["-q", "synth", "benchmarks", "--out", str(bench), "--n", "2", "--workers", "1",
                 "--set", "benchmarks=[sSC,lexical]"]) == 0
    texts = list(read_jsonl(bench / "texts.jsonl"))
    cloze = {t["id"]: t for t in texts if t["bench"] == "sSC"}
    assert sorted(cloze) == ["sSC/0_correct", "sSC/0_wrong", "sSC/1_correct", "sSC/1_wrong"]
    assert all("words" not in t for t in texts if t["bench"] == "lexical")
    for t in cloze.values():
        assert [w[0] for w in t["words"]] == [w for w, _, _ in text_words(t["text"])]
        ends = [w[2] for w in t["words"]]
        assert ends == sorted(ends) and 0 < ends[-1] <= 60
    # units for every utterance (as `slam units` would write them: id, dedup units, durations)
    rng = np.random.default_rng(0)
    recs = []
    for rid, t in cloze.items():
        n_frames = int(t["words"][-1][2] * 25) + 5
        durs = rng.integers(1, 4, size=n_frames).tolist()
        recs.append({"id": rid, "units": rng.integers(0, N_UNITS, size=len(durs)).tolist(),
                     "durations": durs})
    write_jsonl(tmp_path / "units" / "bench.jsonl", recs)
    out = pairs_from_benchmark(bench / "sSC" / "pairs.jsonl", None, tmp_path / "units",
                               tmp_path / "cm.jsonl")
    pairs = read_crossmodal(out)
    assert [p["id"] for p in pairs] == ["0", "1"]
    by_id = {r["id"]: r for r in recs}
    for p in pairs:
        pos, neg = cloze[f"sSC/{p['id']}_correct"], cloze[f"sSC/{p['id']}_wrong"]
        assert p["positive"].words == pos["words"] and p["negative"].words == neg["words"]
        assert p["positive"].units == by_id[f"sSC/{p['id']}_correct"]["units"]
        spans = word_unit_spans(p["positive"].durations, p["positive"].words)
        assert len(spans) == len(pos["words"])
    (bench / "texts.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="texts.jsonl is missing"):
        pairs_from_benchmark(bench / "sSC" / "pairs.jsonl", None, tmp_path / "units",
                             tmp_path / "cm2.jsonl")
