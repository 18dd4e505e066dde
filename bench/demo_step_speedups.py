"""Three of the demo's step speed-ups, each measured beside what it replaced, in one run.

1. TWIST init from SmolLM2's GGUF (the demo's 2 kept blocks): our GGUF reader
   (``slamlm.model.gguf_llama``, only the kept blocks dequantised) vs transformers' GGUF
   loader (every tensor, all metadata), each in a fresh process (imports included). The
   weights are checked equal.
2. One isolated espeak-ng utterance (a forked child per utterance, as benchmark and story
   files are spoken): an engine that loaded its voice data at start vs one that never did,
   each in a fresh process; the samples are checked equal.
3. Reading a synthetic story back (``load_audio``): WAV vs FLAC files of the same audio.

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
    print("| step | ours | baseline | speed-up | same result |")
    print("|---|---|---|---|---|")
    names = ("GGUF reader vs transformers", "voice preloaded vs not", "WAV vs FLAC")
    for (what, o, b, same), how in zip(rows, names):
        print(f"| {what}: {how} | {o:.2f} | {b:.2f} | {ratio(b, o)} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
