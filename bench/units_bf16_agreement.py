"""Units from HuBERT in bf16 vs fp32: how many frames get the same unit?

The HuBERT encoder's default dtype follows this measurement: bf16 only if the two agree on
>= 99.5% of frames. Model: a random-weight HuBERT at the real mHuBERT-25Hz shape (hidden 768,
12 layers, 12 heads, MLP 3072, 8 conv layers of 512 channels, kernels 10,3,3,3,3,2,2,2,
strides 5,2,2,2,2,2,2,2 = 640, group-norm feature extractor), cut at layer 11, inputs padded
40 samples per side as slamkit does. Audio: speech-like synthetic clips of a few seconds
(bench/kmeans_quality.py's generator). Quantisers with k = 500, made from the fp32 features
of the first 2/3 of the clips; agreement is measured on the other 1/3 (held out):

- ``fitted``: our k-means fitted on those fp32 features;
- ``random frames``: 500 of those fp32 frames drawn at random as centroids.

Both dtypes run on the same device (CPU by default; ``--device cuda`` on a GPU).

    python bench/units_bf16_agreement.py               # 60 clips of 3-8 s, a few minutes on CPU
    python bench/units_bf16_agreement.py --clips 6     # smoke check

Prints a markdown table: frames, unit agreement per quantiser, feature relative error,
seconds per dtype.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kmeans_quality import speechlike  # noqa: E402

from slamlm.units.encoders import HubertEncoder  # noqa: E402
from slamlm.units.kmeans import KMeans, fit_kmeans  # noqa: E402

THRESHOLD = 0.995


def build_hubert(folder: Path, seed: int = 0) -> str:
    """Random-init HuBERT-base with the 25 Hz conv stack (~95M parameters), saved to ``folder``."""
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                       intermediate_size=3072, conv_dim=(512,) * 8,
                       conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2, 2),
                       feat_extract_norm="group", do_stable_layer_norm=False)
    torch.manual_seed(seed)
    HubertModel(cfg).save_pretrained(folder)
    return str(folder)


def features(folder: str, dtype: torch.dtype, wavs: list[np.ndarray],
             device: str) -> tuple[list[torch.Tensor], float]:
    enc = HubertEncoder(folder, layer=11, device=device, dtype=dtype)
    t0 = time.perf_counter()
    feats = [enc.features([w])[0].float().cpu() for w in wavs]
    return feats, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    rng = np.random.default_rng(0)
    wavs = [speechlike(float(rng.uniform(3, 8)), seed=100 + i) for i in range(args.clips)]
    seconds = sum(len(w) for w in wavs) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_hubert(Path(tmp) / "hubert")
        f32, t32 = features(folder, torch.float32, wavs, args.device)
        b16, t16 = features(folder, torch.bfloat16, wavs, args.device)
    cut = 2 * len(wavs) // 3
    fit_on, x32, x16 = torch.cat(f32[:cut]), torch.cat(f32[cut:]), torch.cat(b16[cut:])
    k = min(500, len(fit_on) // 2)
    pick = torch.randperm(len(fit_on), generator=torch.Generator().manual_seed(0))[:k]
    quantisers = {f"fitted k-means {k}": fit_kmeans(fit_on, k=k, seed=0),
                  f"random frames {k}": KMeans(fit_on[pick])}
    rel = float((x16 - x32).norm(dim=1).mean() / x32.norm(dim=1).mean())
    print(f"{args.clips} clips, {seconds:.1f} s of audio; quantisers from {len(fit_on)} frames "
          f"of {cut} clips, agreement on {len(x32)} held-out frames; layer 11, device "
          f"{args.device}, {args.threads} thread(s)\n")
    print("| quantiser | frames | fp32 vs bf16 unit agreement | feature rel. error "
          "| fp32 s | bf16 s |")
    print("|---|---|---|---|---|---|")
    worst = 1.0
    for name, km in quantisers.items():
        agree = float((km.assign(x32) == km.assign(x16)).float().mean())
        worst = min(worst, agree)
        print(f"| {name} | {len(x32)} | {100 * agree:.2f}% | {rel:.4f} | {t32:.1f} | {t16:.1f} |")
    choice = "bf16" if worst >= THRESHOLD else "fp32"
    print(f"\nlowest agreement {100 * worst:.2f}% vs threshold {100 * THRESHOLD:.1f}%: "
          f"default HuBERT dtype -> {choice}")


if __name__ == "__main__":
    main()
