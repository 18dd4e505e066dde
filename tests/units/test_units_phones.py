"""The phone-posterior encoder: espeak-ng phone timings, training, the ``phones:`` encoder,
k-means over its posteriors, identity checks and the mel inverse of phone units."""

import json

import numpy as np
import pytest
import torch

from slamlm.synth.corpus import SynthConfig, run_synth
from slamlm.synth.tts import Voice, get_backend
from slamlm.units.extractor import UnitExtractor
from slamlm.units.phones import PhoneEncoder, PhoneTrainConfig, frame_labels, train_phone_encoder
from slamlm.units.runner import UnitsConfig, run_units


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    out = tmp_path_factory.mktemp("phones") / "stories"
    run_synth(SynthConfig(out=str(out), n=10, voices=("en-us", "en-us+f3"), workers=1))
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def encoder_dir(stories):
    return train_phone_encoder(PhoneTrainConfig(manifest=str(stories), out=str(
        stories.parent.parent / "enc"), budget_s=20, epochs=10, batch=2, hidden=64, threads=1))


def test_espeak_phone_timings_leave_audio_and_words_unchanged():
    tts = get_backend("espeak")
    wav, sr, words, phones = tts.synthesize_phones("The rabbit likes the carrot.", Voice("en-us"))
    wav2, _, words2 = tts.synthesize("The rabbit likes the carrot.", Voice("en-us"))
    assert np.array_equal(wav, wav2) and words == words2
    names = [p[0] for p in phones if p[0] != "_"]
    assert names[:7] == ["D", "@2", "r", "a", "b", "I", "t"]  # "the rabbit", stress dropped
    starts = [p[1] for p in phones]
    assert starts == sorted(starts) and all(s < e for _, s, e in phones)
    assert phones[-1][2] == pytest.approx(len(wav) / sr, abs=1e-3)


def test_manifest_records_phones_and_labels_follow_them(stories):
    rec = json.loads(stories.read_text().splitlines()[0])
    assert rec["phones"] and rec["phones"][0][1] < rec["words"][0][2]
    index = {"_": 0, **{p: i + 1 for i, p in enumerate(sorted({p[0] for p in rec["phones"]} - {"_"}))}}
    lab = frame_labels(rec["phones"], int(rec["duration"] * 25), index)
    assert lab.max() > 0 and len(set(lab.tolist())) > 10


def test_trained_encoder_gives_phone_posteriors(encoder_dir, stories):
    meta = json.loads((encoder_dir / "config.json").read_text())
    assert meta["format"] == "slamlm-phones-1" and "_" in meta["phones"]
    assert meta["heldout_frame_accuracy"] > 0.3  # a tiny net, 10 stories: far above chance
    enc = PhoneEncoder(encoder_dir)
    assert enc.id == f"phones:{encoder_dir.resolve()}" and len(enc.weights_hash) == 16
    wav = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    (f,) = enc.features([wav])
    assert f.shape == (50, enc.dim) and torch.allclose(f.sum(1), torch.ones(50), atol=1e-4)
    # a frame does not depend on the batch it is encoded in
    (g, _) = enc.features([wav, wav[:16000]])
    assert torch.allclose(f, g, atol=1e-6)


def test_retrain_keeps_or_refuses(encoder_dir, stories):
    same = PhoneTrainConfig(manifest=str(stories), out=str(encoder_dir), budget_s=20,
                            epochs=10, batch=2,
                            hidden=64, threads=1)
    before = (encoder_dir / "phone_encoder.safetensors").read_bytes()
    assert train_phone_encoder(same) == encoder_dir
    assert (encoder_dir / "phone_encoder.safetensors").read_bytes() == before
    with pytest.raises(FileExistsError, match="other settings"):
        train_phone_encoder(PhoneTrainConfig(manifest=str(stories), out=str(encoder_dir), hidden=32))


def test_a_moved_run_keeps_its_encoder_and_an_edited_manifest_does_not(encoder_dir, stories,
                                                                       tmp_path):
    """The manifest is compared by content: a run folder moved elsewhere re-runs without
    retraining (it used to stop with "trained with other settings")."""
    import dataclasses
    import shutil

    moved = tmp_path / "moved" / "manifest.jsonl"
    moved.parent.mkdir()
    shutil.copy(stories, moved)
    meta = json.loads((encoder_dir / "config.json").read_text())
    kw = {k: v for k, v in meta["trained_with"].items() if k != "manifest_sha1"}
    cfg = PhoneTrainConfig(**{**kw, "manifest": str(moved), "out": str(encoder_dir)})
    before = (encoder_dir / "phone_encoder.safetensors").read_bytes()
    assert train_phone_encoder(cfg) == encoder_dir
    assert (encoder_dir / "phone_encoder.safetensors").read_bytes() == before
    moved.write_text(moved.read_text().splitlines()[0] + "\n")  # other content: refused
    with pytest.raises(FileExistsError, match="other settings"):
        train_phone_encoder(dataclasses.replace(cfg))
    with pytest.raises(FileNotFoundError, match="no such manifest"):
        train_phone_encoder(dataclasses.replace(cfg, manifest=str(tmp_path / "nope.jsonl")))


def test_manifest_without_phones_is_refused(tmp_path, stories):
    rows = [json.loads(x) for x in stories.read_text().splitlines()]
    for r in rows:
        r.pop("phones")
    bad = stories.parent / "old_manifest.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="have no 'phones'.*re-run slam synth"):
        train_phone_encoder(PhoneTrainConfig(manifest=str(bad), out=str(tmp_path / "e")))
    assert not (tmp_path / "e").exists()


def test_units_from_phones_identity_and_mel_inverse(encoder_dir, stories, tmp_path):
    from slamlm.generate.vocoder import load_vocoder

    out = run_units(UnitsConfig(input=str(stories), out=str(tmp_path / "units"),
                                encoder=f"phones:{encoder_dir}", k=12, device="cpu"))
    ident = json.loads((out / "identity.json").read_text())
    assert ident["encoder"] == f"phones:{encoder_dir.resolve()}"
    assert ident["encoder_hash"] == PhoneEncoder(encoder_dir).weights_hash
    ex = UnitExtractor.from_identity(ident)
    assert ex.kmeans.k == 12 and ex.kmeans.dim == ex.encoder.dim
    voc = load_vocoder("auto", ident)
    wav = voc(np.array([1, 2, 3]), np.array([3, 2, 4]))
    assert wav.shape == (9 * 640,) and np.isfinite(wav).all() and np.abs(wav).max() > 0
    with pytest.raises(ValueError, match="retrained since"):
        UnitExtractor.from_identity({**ident, "encoder_hash": "0" * 16})


def test_gender_head_puts_the_voice_into_the_features(stories, tmp_path):
    enc_dir = train_phone_encoder(PhoneTrainConfig(
        manifest=str(stories), out=str(tmp_path / "enc"), budget_s=20, epochs=10, batch=2,
        hidden=64, threads=1, voice="gender", voice_weight=2.0))
    meta = json.loads((enc_dir / "config.json").read_text())
    assert meta["voices"] == ["f", "m"] and meta["voice_weight"] == 2.0
    assert meta["heldout_voice_accuracy"] > 0.6  # en-us vs en-us+f3: pitch and formants differ
    enc = PhoneEncoder(enc_dir)
    n = len(enc.phones)
    assert enc.dim == n + 2
    from slamlm.audio import load_audio

    rows = [json.loads(x) for x in stories.read_text().splitlines()]
    by_gender = {}
    for r in rows:
        (f,) = enc.features([load_audio(stories.parent / r["path"])])
        assert torch.allclose(f[:, :n].sum(1), torch.ones(len(f)), atol=1e-4)
        voice = f[:, n:]
        # centred posteriors times weight times p(speech): the two columns cancel, |v| <= 1
        assert torch.allclose(voice.sum(1), torch.zeros(len(f)), atol=1e-4)
        assert voice.abs().max() <= 1.0 + 1e-5
        speech = f[:, enc.phones.index("_")] < 0.5
        by_gender.setdefault(r["voice"], []).append(voice[speech, 0].mean().item())
    # column 0 is "f": positive in the female voice's speech, negative in the male one's
    assert min(by_gender["en-us+f3"]) > 0 > max(by_gender["en-us"])
    with pytest.raises(ValueError, match="voice='age'"):
        train_phone_encoder(PhoneTrainConfig(manifest=str(stories), out=str(tmp_path / "x"),
                                             voice="age"))


def test_gender_head_needs_voices_of_two_classes(stories, tmp_path):
    rows = [json.loads(x) for x in stories.read_text().splitlines()]
    one = stories.parent / "one_gender.jsonl"
    one.write_text("".join(json.dumps({**r, "voice": "en-us"}) + "\n" for r in rows))
    with pytest.raises(ValueError, match="at least two classes"):
        train_phone_encoder(PhoneTrainConfig(manifest=str(one), out=str(tmp_path / "e"),
                                             voice="gender"))
    missing = stories.parent / "no_voice.jsonl"
    missing.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "voice"}) + "\n"
                           for r in rows))
    with pytest.raises(ValueError, match="needs its espeak-ng 'voice'"):
        train_phone_encoder(PhoneTrainConfig(manifest=str(missing), out=str(tmp_path / "e"),
                                             voice="gender"))
    assert not (tmp_path / "e").exists()


def test_gendered_units_speak_with_their_voice_class(stories, tmp_path):
    """The mel inverse of a unit uses the mean frames of the voice class its centroid names."""
    enc_dir = train_phone_encoder(PhoneTrainConfig(
        manifest=str(stories), out=str(tmp_path / "enc"), budget_s=20, epochs=4, batch=2,
        hidden=32, threads=1, voice="gender"))
    enc = PhoneEncoder(enc_dir)
    n, a = len(enc.phones), enc.phones.index("a")
    vm = enc.net.voice_mels
    assert vm.shape == (2, n, enc.net.phone_mels.shape[1])
    assert not torch.allclose(vm[0, a], vm[1, a])  # "a" in the female and in the male voice
    one = torch.zeros(3, enc.dim)
    one[:, a] = 1.0
    one[0, n:] = torch.tensor([0.5, -0.5])   # clearly female (column 0 is "f")
    one[1, n:] = torch.tensor([-0.5, 0.5])   # clearly male
    mels = enc.unit_log_mels(one)            # row 2: no voice -> the two classes' mean
    assert torch.allclose(mels[0], vm[0, a], atol=1e-5)
    assert torch.allclose(mels[1], vm[1, a], atol=1e-5)
    assert torch.allclose(mels[2], (vm[0, a] + vm[1, a]) / 2, atol=1e-5)


def test_lr_factor_warms_up_then_anneals_to_zero():
    from slamlm.units.phones import lr_factor

    assert lr_factor(0.0) == pytest.approx(0.04) and lr_factor(0.1) == pytest.approx(1.0)
    values = [lr_factor(p / 100) for p in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone after the warm-up
    assert lr_factor(1.0) == pytest.approx(0.0, abs=1e-12) and lr_factor(2.0) == lr_factor(1.0)


def test_crops_are_windows_of_their_utterance():
    import random

    from slamlm.units.phones import _batches

    feats = [torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3) for n in (50, 8, 20)]
    labels = [torch.arange(n) for n in (50, 8, 20)]
    (x, y, v), = list(_batches([0, 1, 2], feats, labels, 3, None, 10, random.Random(0)))
    assert x.shape == (3, 10, 3) and (v == -100).all()
    assert y[1, 8:].eq(-100).all() and y[1, :8].tolist() == list(range(8))  # shorter: whole
    for b in (0, 2):  # a contiguous window of its own frames, labels aligned with the mel
        start = int(y[b, 0])
        assert y[b].tolist() == list(range(start, start + 10)) and x[b, :, 0].tolist() == y[b].tolist()
    (x_full, _, _), = list(_batches([0, 1], feats, labels, 2))
    assert x_full.shape == (2, 50, 3)  # crop 0: whole utterances, padded to the longest


def test_time_budget_still_anneals_the_learning_rate(stories, tmp_path, monkeypatch):
    """A run cut by its budget ends at the end of its schedule, not in mid warm-up."""
    import slamlm.units.phones as phones

    seen = []
    real = phones.lr_factor
    monkeypatch.setattr(phones, "lr_factor", lambda p, warmup=0.1: seen.append(p) or real(p, warmup))
    train_phone_encoder(PhoneTrainConfig(manifest=str(stories), out=str(tmp_path / "enc"),
                                         budget_s=1.5, epochs=10_000, batch=2, hidden=16,
                                         layers=1, threads=1))
    assert len(seen) > 3 and seen[-1] > 0.8 and seen == sorted(seen)


def test_hop_sets_the_frame_rate(stories, tmp_path):
    enc_dir = train_phone_encoder(PhoneTrainConfig(
        manifest=str(stories), out=str(tmp_path / "enc50"), hop=320, budget_s=3, epochs=1,
        batch=2, hidden=16, layers=1, threads=1))
    enc = PhoneEncoder(enc_dir)
    assert json.loads((enc_dir / "config.json").read_text())["hop"] == 320
    (f,) = enc.features([np.zeros(16000, np.float32)])
    assert f.shape[0] == 50 == enc.n_frames(16000)  # 50 Hz


def test_a_step_count_fixes_the_training_length(stories, tmp_path):
    """steps=N with no time budget: N optimizer steps whatever the machine's speed."""
    cfg = PhoneTrainConfig(manifest=str(stories), out=str(tmp_path / "enc"), budget_s=0,
                           steps=3, epochs=50, batch=2, hidden=16, threads=1)
    meta = json.loads((train_phone_encoder(cfg) / "config.json").read_text())
    assert meta["steps"] == 3 and meta["trained_with"]["steps"] == 3
