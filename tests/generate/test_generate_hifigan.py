"""Unit HiFi-GAN: fairseq-format checkpoint round trip, output length, weight-norm folding."""

from __future__ import annotations

import json

import pytest
import torch

from slamlm.generate.hifigan import (
    CodeHiFiGAN,
    fold_weight_norm,
    load_code_hifigan,
    save_code_hifigan,
)


def tiny_cfg(rates=(5, 4, 4, 2, 2), dur=True, k=20):
    cfg = {
        "resblock": "1", "upsample_rates": list(rates),
        "upsample_kernel_sizes": [2 * r + r % 2 for r in rates], "upsample_initial_channel": 64,
        "resblock_kernel_sizes": [3, 7], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
        "num_embeddings": k, "embedding_dim": 16, "model_in_dim": 16, "sampling_rate": 16000,
    }
    if dur:
        cfg["dur_predictor_params"] = {"encoder_embed_dim": 16, "var_pred_hidden_dim": 16,
                                       "var_pred_kernel_size": 3, "var_pred_dropout": 0.5}
    return cfg


@pytest.mark.parametrize("rates,hop", [((5, 4, 4, 2, 2), 320), ((5, 4, 4, 4, 2), 640)])
def test_output_length_is_units_times_hop(rates, hop):
    torch.manual_seed(0)
    gen = CodeHiFiGAN(tiny_cfg(rates)).eval()
    assert gen.hop == hop
    with torch.no_grad():
        wav = gen(torch.randint(0, 20, (2, 7)))
    assert wav.shape == (2, 7 * hop)
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1


def test_checkpoint_round_trip_in_fairseq_layout(tmp_path):
    torch.manual_seed(0)
    gen = CodeHiFiGAN(tiny_cfg()).eval()
    ckpt = save_code_hifigan(gen, tmp_path / "voc", step=500000)
    assert ckpt.name == "g_00500000"
    state = torch.load(ckpt, weights_only=True)["generator"]
    assert "conv_pre.weight_g" in state and "ups.0.weight_v" in state
    assert "resblocks.0.convs1.2.weight_g" in state and "dict.weight" in state
    assert "dur_predictor.conv1.0.weight" in state and "dur_predictor.proj.weight" in state
    assert json.loads((tmp_path / "voc" / "config.json").read_text())["num_embeddings"] == 20
    loaded = load_code_hifigan(tmp_path / "voc")  # folder -> newest g_*
    for (k, a), (k2, b) in zip(gen.state_dict().items(), loaded.state_dict().items()):
        assert k == k2
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    code = torch.randint(0, 20, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(gen(code), loaded(code), rtol=1e-5, atol=1e-6)
        with_dur = loaded(code, dur_prediction=True)
        durs = loaded.dur_predictor.durations(loaded.dict(code))
    assert with_dur.shape == (1, int(durs.sum()) * loaded.hop)
    assert int(durs.min()) >= 1


def test_fold_matches_torch_weight_norm():
    conv = torch.nn.ConvTranspose1d(8, 4, 6, 3)
    wn = torch.nn.utils.parametrizations.weight_norm(conv)
    with torch.no_grad():
        wn.parametrizations.weight.original0.mul_(torch.rand_like(wn.parametrizations.weight.original0) + 0.5)
    folded = fold_weight_norm({f"ups.0.{k}": v for k, v in wn.state_dict().items()})
    assert set(folded) == {"ups.0.weight", "ups.0.bias"}
    torch.testing.assert_close(folded["ups.0.weight"], wn.weight.detach())


def test_load_errors_name_the_problem(tmp_path):
    torch.manual_seed(0)
    save_code_hifigan(CodeHiFiGAN(tiny_cfg()), tmp_path / "a")
    (tmp_path / "b").mkdir()
    bad = tiny_cfg()
    bad["upsample_initial_channel"] = 128
    (tmp_path / "b" / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="does not match"):
        load_code_hifigan(tmp_path / "a" / "g_00000000", tmp_path / "b" / "config.json")
    with pytest.raises(FileNotFoundError, match="no g_XXXXXXXX"):
        load_code_hifigan(tmp_path / "b")
    with pytest.raises(ValueError, match="F0/style"):
        CodeHiFiGAN({**tiny_cfg(), "f0": True})
    with pytest.raises(ValueError, match="speaker-id table"):  # only speaker embeddings
        CodeHiFiGAN({**tiny_cfg(), "multispkr": True})
    with pytest.raises(ValueError, match="model_in_dim"):
        CodeHiFiGAN({**tiny_cfg(), "multispkr": True, "embedder_params": {"name": "x"}})
    with pytest.raises(ValueError, match="no duration predictor"):
        CodeHiFiGAN(tiny_cfg(dur=False))(torch.zeros(1, 3, dtype=torch.long), dur_prediction=True)
