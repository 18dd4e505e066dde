"""Units extraction throughput: our runner vs a naive one-file-at-a-time loop, same encoder.

The naive loop is how extraction is usually scripted: for each file, load it, encode it
alone (for HuBERT: fp32 and every hidden state returned, as the peer toolkit does), assign
units on the CPU with numpy argmin over the full (frames x k x dim) distance tensor, dedup,
append a JSON line. Ours is ``slam units extract`` (``run_units``): header probe,
length-sorted batches, decoding in worker processes, batched encoder, torch assignment on
the encoder's device, resumable JSONL. Both use the same centroids and write the same units.

    python bench/units_throughput.py                       # CPU, mel, 40 clips of 10-20 s
    python bench/units_throughput.py --hubert-random       # GPU: random HuBERT-base 25 Hz (95M)

Prints a markdown table: files, audio hours, seconds, x real time, ratio to the naive loop.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from slamlm.audio import load_audio, save_audio  # noqa: E402
from slamlm.units.extractor import UnitExtractor, dedup  # noqa: E402
from slamlm.units.kmeans import KMeans, save_kmeans  # noqa: E402
from slamlm.units.runner import UnitsConfig, read_units, run_units  # noqa: E402


def make_clips(folder: Path, n: int, seed: int = 0, lo: float = 10.0, hi: float = 20.0) -> float:
    """``n`` synthetic ``lo``-``hi`` s 16 kHz clips (gliding sines + noise); returns total seconds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(n):
        sec = float(rng.uniform(lo, hi))
        t = np.arange(int(sec * 16000)) / 16000
        f0 = rng.uniform(90, 250) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / 16000) * (0.5 + 0.5 * np.sin(3 * t)) ** 2
        x += 0.03 * rng.standard_normal(t.size)
        save_audio(folder / f"clip{i:03d}.flac", x.astype(np.float32))
        total += len(t) / 16000
    return total


def build_random_hubert(folder: Path, norm: str, hidden: int = 768, layers: int = 12,
                        heads: int = 12, ffn: int = 3072, conv: int = 512) -> str:
    """Random-init HuBERT (default: the base shape, ~95M params) with the 25 Hz conv stack
    (total stride 640); smaller sizes are for CPU smoke runs."""
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=ffn, conv_dim=(conv,) * 8,
                       conv_kernel=(10, 3, 3, 3, 3, 2, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2, 2),
                       feat_extract_norm=norm, do_stable_layer_norm=False)
    torch.manual_seed(0)
    model = HubertModel(cfg)
    logging.info("random HuBERT-25Hz: %.1fM parameters", sum(p.numel() for p in model.parameters()) / 1e6)
    model.save_pretrained(folder)
    return str(folder)


def naive_loop(paths: list[Path], encoder: str, centroids: np.ndarray, out: Path,
               device: str, layer: int) -> None:
    """One file at a time; numpy argmin over the full distance tensor on the CPU."""
    ex = UnitExtractor.load(encoder, None, layer=layer, device=device, dtype="fp32")
    if encoder.startswith("hubert:"):  # the peer way: the full model, every hidden state
        from transformers import HubertModel

        full = HubertModel.from_pretrained(encoder[7:]).eval().to(device)
    with open(out, "w") as f:
        for p in paths:
            wav = load_audio(p)
            with torch.no_grad():
                if encoder.startswith("hubert:"):
                    hs = full(torch.from_numpy(wav)[None].to(device), output_hidden_states=True)
                    feats = hs.hidden_states[layer][0].float().cpu().numpy()
                else:
                    feats = ex.features([wav])[0].cpu().numpy()
            d = ((feats[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)  # (T, k, dim) -> (T, k)
            units, durations = dedup(d.argmin(1))
            f.write(json.dumps({"id": p.stem, "units": units.tolist(),
                                "durations": durations.tolist()}) + "\n")


def row(name: str, n: int, audio_s: float, wall: float, base: float | None) -> str:
    ratio = f"{base / wall:.2f}x" if base else "1.00x"
    return f"| {name} | {n} | {audio_s / 3600:.3f} | {wall:.2f} | {audio_s / wall:.0f} | {ratio} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--k", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--hubert-random", action="store_true", help="random HuBERT-base 25 Hz (needs CUDA)")
    ap.add_argument("--hubert-norm", default="group", choices=("group", "layer"))
    ap.add_argument("--batch-seconds", type=float, default=320.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.hubert_random and device != "cuda":
        sys.exit("--hubert-random needs a CUDA GPU")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "audio").mkdir()
        audio_s = make_clips(tmp / "audio", args.files)
        paths = sorted((tmp / "audio").glob("*.flac"))
        encoder, layer = "mel", 11
        if args.hubert_random:
            encoder = "hubert:" + build_random_hubert(tmp / "hubert", args.hubert_norm)
        # centroids: k frames picked from the first clip's features (same for both runs)
        ex = UnitExtractor.load(encoder, None, layer=layer, device=device)
        feats = torch.cat(ex.features([load_audio(p) for p in paths[:4]])).cpu()
        pick = torch.from_numpy(np.random.default_rng(0).choice(len(feats), args.k, replace=False))
        km = KMeans(feats[pick], encoder=ex.encoder.id, layer=ex.encoder.layer)
        km_path = save_kmeans(km, tmp / "km.safetensors")
        del ex
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        naive_loop(paths, encoder, km.centroids.numpy(), tmp / "naive.jsonl", device, layer)
        base = time.perf_counter() - t0
        cfg = UnitsConfig(input=str(tmp / "audio"), out=str(tmp / "ours"), encoder=encoder,
                          layer=layer, kmeans=str(km_path), num_workers=args.num_workers,
                          batch_seconds=args.batch_seconds, device=device)
        t0 = time.perf_counter()
        run_units(cfg)
        ours = time.perf_counter() - t0
        naive = {json.loads(x)["id"]: json.loads(x)["units"] for x in open(tmp / "naive.jsonl")}
        same = sum(naive[r["id"]] == r["units"] for r in read_units(tmp / "ours"))
    dev = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {args.threads} threads"
    print(f"\nunits throughput: encoder {'random HuBERT-base 25 Hz (' + args.hubert_norm + ' norm)' if args.hubert_random else 'mel'}, "
          f"k={args.k}, {dev}, {args.files} clips of 10-20 s; identical units in {same}/{args.files} files\n")
    print("| variant | files | audio h | seconds | x real time | vs naive |")
    print("|---|---|---|---|---|---|")
    print(row("naive loop (one file, numpy argmin on CPU)", args.files, audio_s, base, None))
    print(row(f"slam units (batched, {args.num_workers} decode workers)", args.files, audio_s, ours, base))


if __name__ == "__main__":
    main()
