"""Encoders: mel framing on real audio, HuBERT layer cut and batch invariance (tiny random)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slamlm.audio import AudioError, load_audio
from slamlm.units.encoders import (
    HubertEncoder,
    MelEncoder,
    conv_frames,
    load_encoder,
    mel_filterbank,
    receptive_field,
)
from slamlm.units.extractor import UnitExtractor

K25 = (10, 3, 3, 3, 3, 2, 2, 2)
S25 = (5, 2, 2, 2, 2, 2, 2, 2)  # total stride 640 = 25 Hz


def tiny_hubert(tmp_path, norm: str, stable: bool = False, layers: int = 3) -> str:
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                       intermediate_size=64, conv_dim=(8,) * 8, conv_kernel=K25, conv_stride=S25,
                       num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                       feat_extract_norm=norm, do_stable_layer_norm=stable)
    torch.manual_seed(0)
    folder = tmp_path / f"hubert-{norm}-{int(stable)}"
    HubertModel(cfg).save_pretrained(folder)
    return str(folder)


def test_mel_frames_match_mhubert_25hz_on_real_audio(peer_example_dir):
    enc = MelEncoder()
    wavs = [load_audio(peer_example_dir / f"audio{i}.flac") for i in (1, 2)]
    feats = enc.features(wavs)
    assert [f.shape[0] for f in feats] == [352, 398]
    assert [conv_frames(len(w), K25, S25) for w in wavs] == [352, 398]  # HuBERT-25Hz conv formula
    assert feats[0].shape[1] == 80 and torch.isfinite(feats[0]).all()
    # utterance normalisation: zero mean, unit variance per band over the file's own frames
    assert feats[0].mean(0).abs().max() < 1e-4
    assert (feats[0].std(0, unbiased=False) - 1).abs().max() < 1e-2


def test_mel_is_batch_invariant_and_framing_formula():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(16000 * 2 + 123).astype(np.float32) * 0.1
    b = rng.standard_normal(16000 * 5).astype(np.float32) * 0.1
    enc = MelEncoder()
    alone = enc.features([a])[0]
    together = enc.features([b, a])[1]
    assert alone.shape == (len(a) // 640, 80)
    torch.testing.assert_close(alone, together, rtol=0, atol=1e-5)
    assert [enc.n_frames(n) for n in (639, 640, 1279, 1280)] == [0, 1, 1, 2]


def test_mel_filterbank_shape_and_coverage():
    fb = mel_filterbank(80, 1024, 16000)
    assert fb.shape == (80, 513)
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()  # no empty band
    peaks = fb.argmax(1)
    assert (peaks[1:] >= peaks[:-1]).all()  # bands ordered by frequency


def test_too_short_audio_is_rejected_with_audio_error(sine_wav):
    ex = UnitExtractor.load("mel", None)
    assert ex.min_seconds == pytest.approx(0.1)
    with pytest.raises(AudioError, match="too short: 0.050 s"):
        ex.encode_paths([sine_wav(seconds=0.05)])
    with pytest.raises(ValueError, match="under the encoder's minimum"):
        ex.features([np.zeros(800, np.float32)])


def test_unknown_encoder_names_the_choices():
    with pytest.raises(ValueError, match="use 'mel', 'hubert:<folder or hub id>' or 'phones:"):
        load_encoder("wav2vec")


def test_hubert_stops_at_layer_and_equals_hidden_state(tmp_path):
    from transformers import HubertModel

    for norm, stable in (("group", False), ("layer", True)):
        folder = tiny_hubert(tmp_path, norm, stable)
        enc = HubertEncoder(folder, layer=2)
        assert len(enc.model.encoder.layers) == 2  # later layers are not computed
        x = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
        full = HubertModel.from_pretrained(folder).eval()
        padded = torch.nn.functional.pad(torch.from_numpy(x)[None], (40, 40))  # as slamkit
        with torch.no_grad():
            ref = full(padded, output_hidden_states=True).hidden_states[2][0]
        torch.testing.assert_close(enc.features([x])[0], ref, rtol=1e-5, atol=1e-5)
        assert enc.n_frames(len(x)) == 25 == ref.shape[0]  # (16000 + 80 - 720) // 640 + 1
    with pytest.raises(ValueError, match="layer 7 does not exist"):
        HubertEncoder(folder, layer=7)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_units_batch_invariant(tmp_path, norm):
    from slamlm.units.kmeans import fit_kmeans

    folder = tiny_hubert(tmp_path, norm, stable=(norm == "layer"))
    enc = HubertEncoder(folder, layer=3)
    rng = np.random.default_rng(2)
    wavs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 27000, 40000, 16000)]
    km = fit_kmeans(torch.cat(enc.features(wavs)), k=8, seed=0, encoder=enc.id, layer=3)
    ex = UnitExtractor(enc, km)
    alone = [ex.encode([w])[0] for w in wavs]
    batched = ex.encode(wavs)
    for a, b, w in zip(alone, batched, wavs):
        assert len(a) == enc.n_frames(len(w))
        np.testing.assert_array_equal(a, b)
    feats_alone = enc.features([wavs[0]])[0]
    feats_batched = enc.features(wavs)[0]
    torch.testing.assert_close(feats_alone, feats_batched, rtol=1e-4, atol=1e-4)


def test_group_norm_would_break_under_padding(tmp_path):
    """Why group-norm models are never padded: forcing padding changes a file's features."""
    enc = HubertEncoder(tiny_hubert(tmp_path, "group"), layer=2)
    assert not enc.padded_ok
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 32000))
    alone = enc.features([a])[0]
    enc.padded_ok = True
    padded = enc.features([a, b])[0]
    assert (alone - padded).abs().max() > 1e-2


EDGES = [640 * k + r for k in (2, 5) for r in (0, 1, 79, 80, 81, 559, 560, 561)]


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_frames_match_slamkit_padding_at_edge_lengths(tmp_path, norm):
    """Reference: the HF HubertModel run on F.pad(wav, (40, 40)), as slamkit does."""
    from transformers import HubertModel

    folder = tiny_hubert(tmp_path, norm, stable=(norm == "layer"), layers=2)
    enc = HubertEncoder(folder, layer=2)
    full = HubertModel.from_pretrained(folder).eval()
    rng = np.random.default_rng(5)
    wavs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in EDGES]
    batched = enc.features(wavs)  # group norm: one by one; layer norm: one masked batch
    for n, w, got in zip(EDGES, wavs, batched):
        with torch.no_grad():
            ref = full(torch.nn.functional.pad(torch.from_numpy(w)[None], (40, 40)),
                       output_hidden_states=True).hidden_states[2][0]
        assert got.shape[0] == ref.shape[0] == enc.n_frames(n) == n // 640, n
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(enc.features([w])[0], got, rtol=1e-4, atol=1e-4)
    # without the pad the grid is 40 samples off and loses a frame below n % 640 == 80
    assert [conv_frames(n, K25, S25) for n in EDGES[:5]] == [1, 1, 1, 2, 2]
    assert enc.n_frames(192_050) == 300 and conv_frames(192_050, K25, S25) == 299


def test_hubert_identity_records_the_pad_and_old_identities_keep_theirs(tmp_path):
    from slamlm.units.kmeans import KMeans, save_kmeans

    folder = tiny_hubert(tmp_path, "group", layers=2)
    save_kmeans(KMeans(torch.randn(4, 32), encoder=f"hubert:{folder}", layer=2), tmp_path / "k.safetensors")
    ex = UnitExtractor.load(f"hubert:{folder}", tmp_path / "k.safetensors", layer=2)
    ident = ex.identity()
    assert ident["pad"] == 40 and UnitExtractor.from_identity(ident).encoder.pad == 40
    old = {k: v for k, v in ident.items() if k != "pad"}  # units made before the padding
    assert UnitExtractor.from_identity(old).encoder.pad == 0
    assert "pad" not in UnitExtractor.load("mel", None).identity()


def test_hubert_defaults_to_fp32(tmp_path):
    # bf16 agreed on < 99.5% of units (bench/units_bf16_agreement.py): fp32 unless asked
    folder = tiny_hubert(tmp_path, "group", layers=1)
    assert HubertEncoder(folder, layer=1).dtype == torch.float32
    assert HubertEncoder(folder, layer=1, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_receptive_field_of_25hz_stack():
    assert receptive_field(K25, S25) == 720
    assert conv_frames(719, K25, S25) == 0 and conv_frames(720, K25, S25) == 1


@pytest.mark.gpu
@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_bf16_on_gpu_batches_like_alone(tmp_path, norm):
    """bf16 on CUDA: units of a file batched with longer ones agree with it encoded alone."""
    from slamlm.units.kmeans import fit_kmeans

    folder = tiny_hubert(tmp_path, norm, stable=(norm == "layer"))
    enc = HubertEncoder(folder, layer=3, device="cuda", dtype=torch.bfloat16)
    rng = np.random.default_rng(4)
    wavs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 30000, 48000)]
    km = fit_kmeans(torch.cat(enc.features(wavs)).cpu(), k=8, seed=0, encoder=enc.id, layer=3)
    ex = UnitExtractor(enc, km)
    alone = np.concatenate([ex.encode([w])[0] for w in wavs])
    batched = np.concatenate(ex.encode(wavs))
    assert alone.shape == batched.shape
    assert (alone == batched).mean() >= 0.98  # bf16 kernels may round differently per shape
