"""SpokenSwag-like preference triplets for DPO: prompt, chosen (coherent), rejected.

The prompt is the start of a story (opening + problem), the chosen continuation resolves
that problem with the same cast, and the rejected one is, by turns, repetitive (a phrase
looping), incoherent (the chosen words shuffled) or off-topic (another story's ending).
Stories come from their own stream ``Random(f"pref/{seed}/{i}")`` (training names).

Output (``out/``): ``audio/<id>_{prompt,chosen,rejected}.flac`` and ``triplets.jsonl`` with
``{"id", "prompt_path", "chosen_path", "rejected_path", "prompt_text", "chosen_text",
"rejected_text", "rejected_kind", "voice"}`` (paths relative to the JSONL, as the DPO reader
expects). Resumable: finished triplets are kept, the rest is spoken on re-run.

Example:
    >>> t = triplet_texts(0, seed=0)
    >>> sorted(t)
    ['chosen', 'prompt', 'rejected', 'rejected_kind']
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

from slamlm.synth.corpus import Job, pick_voice, render
from slamlm.synth.stories import PLOTS, _feeling, _fill, story_parts
from slamlm.synth.tts import DEFAULT_VOICES

log = logging.getLogger(__name__)
REJECT_KINDS = ("repetitive", "incoherent", "off_topic")


@dataclass(frozen=True)
class PrefConfig:
    """``slam synth preferences`` settings."""

    out: str = "preferences"
    n: int = 500
    seed: int = 0
    voices: tuple[str, ...] = DEFAULT_VOICES
    workers: int = 2
    backend: str = "espeak"
    strict: bool = False


def triplet_texts(i: int, seed: int = 0) -> dict[str, str]:
    """Texts of triplet ``i``: prompt, chosen, rejected and the kind of rejection."""
    r = random.Random(f"pref/{seed}/{i}")
    sents, cast, plot = story_parts(r)
    prompt = " ".join([sents[0], _fill(r.choice(PLOTS[plot][0]), cast, r)])
    chosen = " ".join([_fill(r.choice(PLOTS[plot][1]), cast, r), _feeling(cast, r)])
    kind = REJECT_KINDS[i % len(REJECT_KINDS)]
    if kind == "repetitive":
        words = chosen.rstrip(".!\"").split()
        k = r.randint(2, 4)
        start = r.randrange(max(1, len(words) - k))
        phrase = " ".join(words[start:start + k])
        rejected = " ".join(words[:start]) + " " + ", ".join([phrase] * r.randint(4, 6)) + "."
    elif kind == "incoherent":
        words = chosen.rstrip(".!\"").replace(",", "").replace('"', "").split()
        r.shuffle(words)
        rejected = " ".join(words).capitalize() + "."
    else:
        _, other, oplot = story_parts(r)
        rejected = _fill(r.choice(PLOTS[oplot][1]), other, r)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected.strip(), "rejected_kind": kind}


def _jobs(cfg: PrefConfig, out: Path, i: int) -> tuple[dict, list[Job]]:
    t = triplet_texts(i, cfg.seed)
    rid = f"pref_{i:07d}"
    voice = pick_voice(f"pref/voice/{cfg.seed}/{i}", cfg.voices)
    rec = {"id": rid, "voice": voice.name, "rejected_kind": t["rejected_kind"]}
    jobs = []
    for role in ("prompt", "chosen", "rejected"):
        rel = f"audio/{i // 1000:04d}/{rid}_{role}.flac"
        rec[f"{role}_path"] = rel
        rec[f"{role}_text"] = t[role]
        jobs.append(Job(f"{rid}/{role}", t[role], voice, str(out / rel), rel))
    return rec, jobs


def run_preferences(cfg: PrefConfig) -> Path:
    """Write ``triplets.jsonl`` + audio under ``cfg.out``; returns the JSONL path."""
    from slamlm.config import dump_config
    from slamlm.io import FailureLog, read_jsonl, write_jsonl

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    manifest = out / "triplets.jsonl"
    done = {r["id"]: r for r in read_jsonl(manifest, skip_bad=True)} if manifest.exists() else {}
    done = {k: r for k, r in done.items()
            if all((out / r[f"{x}_path"]).is_file() for x in ("prompt", "chosen", "rejected"))}
    recs, jobs = {}, []
    for i in range(cfg.n):
        rec, js = _jobs(cfg, out, i)
        recs[rec["id"]] = rec
        if rec["id"] not in done:
            jobs += [j for j in js if not Path(j.path).is_file()]
    failures = FailureLog(out / "failures.jsonl", stage="synth-preferences", strict=cfg.strict)
    bad = set()
    for res in render(jobs, cfg.workers, cfg.backend, desc="synth preferences"):
        if "error" in res:
            failures.add(res["id"], res["path"], res["error"])
            bad.add(res["id"].split("/")[0])
    final = [done.get(k) or recs[k] for k in sorted(recs) if k not in bad]
    write_jsonl(manifest, final)
    log.info("preferences: wrote %s (%d triplets, %d failed)", manifest, len(final), len(bad))
    return manifest
