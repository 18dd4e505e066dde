"""Seven of the demo's step speed-ups, each measured beside what it replaced, in one run.

1. TWIST init from SmolLM2's GGUF (the demo's 2 kept blocks): our GGUF reader
   (``slamlm.model.gguf_llama``, only the kept blocks dequantised) vs transformers' GGUF
   loader (every tensor, all metadata), each in a fresh process (imports included). The
   weights are checked equal.
2. One isolated espeak-ng utterance (a forked child per utterance, as benchmark and story
   files are spoken): an engine that loaded its voice data at start vs one that never did,
   each in a fresh process; the samples are checked equal.
3. Reading a synthetic story back (``load_audio``): WAV vs FLAC files of the same audio.
4. The CPU thread choice of a stage on an idle machine (``set_cpu_threads``: a 0.2 s look at
   ``/proc/stat``) vs the matmul probe it ran every time before (``pick_cpu_threads``); the
   same count is checked.
5. A story's log-mel frames: power as re^2 + im^2 (``MelEncoder``) vs ``abs().pow(2)``.
6. A story's frame phone labels (``frame_labels``: slices of the sorted frame centres) vs a
   mask over all frames per phone.
7. The eval's units of benchmark files: read from the units file the benchmark synthesis
   wrote (``UnitCache(seeds=...)``) vs encoded (mel encoder + k-means here).

Usage:

    python bench/demo_step_speedups.py [--stories 60] [--utterances 120]

Example:
    >>> ratio(2.0, 1.0)
    '2.00x'
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ratio(base: float, ours: float) -> str:
    """How many times faster ``ours`` is than ``base`` (both in seconds)."""
    return f"{base / max(ours, 1e-9):.2f}x"


INIT = """
import time, hashlib, sys
t = time.perf_counter()
from slamlm.eval.genmetrics import smollm2_gguf
from slamlm.model.init import twist_init
from slamlm.vocab import UnitVocab
src = str(smollm2_gguf())
if sys.argv[1] == "transformers":
    from slamlm.model.hf import load_hf_model
    src = load_hf_model(src)
model, _ = twist_init(src, UnitVocab(n_units=160), keep_layers=2)
h = hashlib.sha1()
for k, v in sorted(model.state_dict().items()):
    h.update(k.encode()); h.update(v.numpy().tobytes())
print(time.perf_counter() - t, h.hexdigest())
"""

SPEAK = """
import time, hashlib, sys
import slamlm.synth.espeak as E
if sys.argv[1] == "none":
    E.PRELOAD_VOICE = ""
from slamlm.synth import bench_items as items
e = E.EspeakEngine.get()
texts = [t for it in items.blimp_items(40, 1) for o in it["options"][:2] for t in o[:2]]
texts = (texts * 10)[:int(sys.argv[2])]
h = hashlib.sha1()
t = time.perf_counter()
for i, x in enumerate(texts):
    pcm, _ = e.forked(e._synth_bytes, x, ("en-us", "en-us+f3", "en")[i % 3], 175, 50, 0)
    h.update(pcm)
print((time.perf_counter() - t) / len(texts), h.hexdigest())
"""


def _child(code: str, *args: str) -> tuple[float, str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[-2]), out[-1]


def bench_reads(n: int) -> tuple[float, float]:
    """Seconds per story read from WAV and from FLAC (same audio, page cache warm)."""
    from slamlm.audio import load_audio, save_audio
    from slamlm.synth.corpus import _make_backend
    from slamlm.synth.stories import story_text
    from slamlm.synth.tts import Voice

    tts = _make_backend("espeak", deterministic=True)
    wavs = [tts.synthesize(story_text(i, 0), Voice("en-us"))[0] for i in range(n)]
    per = {}
    with tempfile.TemporaryDirectory() as d:
        for ext in ("wav", "flac"):
            paths = [Path(d) / f"{i}.{ext}" for i in range(n)]
            for p, w in zip(paths, wavs):
                save_audio(p, w, 16000)
            for p in paths:  # warm the page cache, as the demo's second read finds it
                p.read_bytes()
            t = time.perf_counter()
            for p in paths:
                load_audio(p)
            per[ext] = (time.perf_counter() - t) / n
    return per["wav"], per["flac"]


def bench_threads(reps: int = 3) -> tuple[float, float, bool]:
    """Seconds per thread choice: idle check vs matmul probe (and whether they agree)."""
    from slamlm.device import pick_cpu_threads, set_cpu_threads

    pick_cpu_threads()  # warm-up (the bf16 probe, done once per process either way)
    t = time.perf_counter()
    ours = [set_cpu_threads(0) for _ in range(reps)]
    t_ours = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    base = [pick_cpu_threads() for _ in range(reps)]
    t_base = (time.perf_counter() - t) / reps
    return t_ours, t_base, ours == base


def _story_wavs(n: int) -> list:
    from slamlm.synth.corpus import _make_backend
    from slamlm.synth.stories import story_text
    from slamlm.synth.tts import Voice

    tts = _make_backend("espeak", deterministic=True)
    return [tts.synthesize_phones(story_text(i, 0), Voice("en-us")) for i in range(n)]


def bench_mel_and_labels(spoken: list) -> tuple[tuple, tuple]:
    """(ours, baseline, same) seconds per story for the log-mel and for the frame labels."""
    import numpy as np
    import torch

    from slamlm.units.mel import MelEncoder
    from slamlm.units.phones import frame_labels

    mel = MelEncoder(normalize="none")

    def mel_abs(w: np.ndarray) -> torch.Tensor:  # the previous power computation
        pad = (mel.n_fft - mel.hop) // 2
        x = torch.zeros(len(w) + 2 * pad + mel.hop)
        x[pad:pad + len(w)] = torch.from_numpy(w)
        spec = torch.fft.rfft(x.unfold(0, mel.n_fft, mel.hop) * mel.window, dim=-1).abs().pow(2)
        return torch.log(spec @ mel.fb.T + 1e-6)[: mel.n_frames(len(w))]

    def labels_mask(phones: list, n: int, index: dict) -> np.ndarray:  # the previous loop
        centres = (np.arange(n) * mel.hop + mel.hop / 2) / 16000
        out = np.full(n, index["_"], np.int64)
        for name, s, e in phones:
            out[(centres >= s) & (centres < e)] = index.get(name, index["_"])
        return out

    wavs = [np.asarray(w, np.float32) for w, *_ in spoken]
    phones = [ph for *_, ph in spoken]
    index = {p: i for i, p in enumerate(sorted({p[0] for ph in phones for p in ph} | {"_"}))}
    mel.features([wavs[0]]), mel_abs(wavs[0])  # warm-up
    t = time.perf_counter()
    ours = [mel.features([w])[0] for w in wavs]
    t1 = time.perf_counter()
    base = [mel_abs(w) for w in wavs]
    t2 = time.perf_counter()
    same = max(float((a - b).abs().max()) for a, b in zip(ours, base)) < 1e-4
    n = len(wavs)
    frames = [mel.n_frames(len(w)) for w in wavs]
    t3 = time.perf_counter()
    lo = [frame_labels(ph, f, index) for ph, f in zip(phones, frames)]
    t4 = time.perf_counter()
    lb = [labels_mask(ph, f, index) for ph, f in zip(phones, frames)]
    t5 = time.perf_counter()
    return (((t1 - t) / n, (t2 - t1) / n, same),
            ((t4 - t3) / n, (t5 - t4) / n, all((a == b).all() for a, b in zip(lo, lb))))


def bench_seeded_units(n: int) -> tuple[float, float, bool]:
    """Seconds per benchmark file: units from a seed file vs encoded."""
    import numpy as np
    import torch

    from slamlm.audio import save_audio
    from slamlm.eval.unitcache import UnitCache, dedup_units, encode_cached
    from slamlm.io import file_sha1, write_jsonl
    from slamlm.units.extractor import UnitExtractor
    from slamlm.units.identity import unit_cache_name
    from slamlm.units.kmeans import KMeans

    torch.manual_seed(0)
    ex = UnitExtractor.load("mel", KMeans(torch.randn(160, 80), encoder="mel", layer=0))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        bench = Path(d) / "bench"
        paths = [str(save_audio(bench / f"{i}.wav", 0.1 * rng.standard_normal(16000)))
                 for i in range(n)]
        truth = {p: dedup_units(u) for p, u in zip(paths, ex.encode_paths(paths))}
        write_jsonl(bench / unit_cache_name(ex.identity()),
                    [{"sha1": file_sha1(p), "units": truth[p].tolist()} for p in paths])
        t = time.perf_counter()
        ours = encode_cached(ex, paths, UnitCache(Path(d) / "c1", ex.identity(), [bench]))
        t1 = time.perf_counter()
        base = encode_cached(ex, paths, UnitCache(Path(d) / "c2", ex.identity()))
        t2 = time.perf_counter()
    same = all(np.array_equal(ours[p], base[p]) and np.array_equal(ours[p], truth[p])
               for p in paths)
    return (t1 - t) / n, (t2 - t1) / n, same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stories", type=int, default=60)
    ap.add_argument("--utterances", type=int, default=120)
    args = ap.parse_args()
    rows = []
    ours, h1 = _child(INIT, "native")
    base, h2 = _child(INIT, "transformers")
    rows.append(("TWIST init, 2 of 30 blocks (s)", ours, base, h1 == h2))
    ours, h1 = _child(SPEAK, "en-us", str(args.utterances))
    base, h2 = _child(SPEAK, "none", str(args.utterances))
    rows.append(("isolated utterance, sBLIMP sentence (ms)", ours * 1e3, base * 1e3, h1 == h2))
    wav, flac = bench_reads(args.stories)
    rows.append(("story read, load_audio (ms)", wav * 1e3, flac * 1e3, True))
    ours, base, same = bench_threads()
    rows.append(("CPU thread choice of a stage, idle machine (s)", ours, base, same))
    (mo, mb, ms), (lo, lb, ls) = bench_mel_and_labels(_story_wavs(args.stories))
    rows.append(("story log-mel (ms)", mo * 1e3, mb * 1e3, ms))
    rows.append(("story frame labels (ms)", lo * 1e3, lb * 1e3, ls))
    ours, base, same = bench_seeded_units(args.utterances)
    rows.append(("eval units of a 1 s benchmark file (ms)", ours * 1e3, base * 1e3, same))
    print("| step | ours | baseline | speed-up | same result |")
    print("|---|---|---|---|---|")
    names = ("GGUF reader vs transformers", "voice preloaded vs not", "WAV vs FLAC",
             "/proc/stat idle check vs matmul probe", "re^2 + im^2 vs abs().pow(2)",
             "slices vs masks", "seeded by the synthesis vs encoded")
    for (what, o, b, same), how in zip(rows, names):
        print(f"| {what}: {how} | {o:.2f} | {b:.2f} | {ratio(b, o)} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
