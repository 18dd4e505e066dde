"""Tiny offline text LM + tokenizer for the interleaving tests (built in a temp folder)."""
# fixtures are re-exported by the test modules that use them (no conftest: name clashes)

from __future__ import annotations

from pathlib import Path

WORDS = ("the a cat dog bird fish sat ran flew swam on in under mat tree sky sea "
         "red blue big small happy sad and then saw ate").split()


def build_text_lm(folder: Path, family: str = "llama", tie: bool = True, seed: int = 0) -> Path:
    """Save a word-level tokenizer and a random 2-layer Llama/Qwen2 LM to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>")
    torch.manual_seed(seed)
    kw = dict(vocab_size=len(vocab) + 2, hidden_size=32, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
              tie_word_embeddings=tie, max_position_embeddings=512, bos_token_id=1,
              eos_token_id=2)
    if family == "qwen2":
        lm = Qwen2ForCausalLM(Qwen2Config(**kw))
    else:
        lm = LlamaForCausalLM(LlamaConfig(rope_theta=50000.0, **kw))
    lm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# --- a synthetic spoken corpus: every word has a fixed unit "pronunciation" -----------------
N_UNITS = 32  # unit 0 is silence
NOUNS = {"cat": "sat on the mat", "dog": "ran under the tree", "bird": "flew in the sky",
         "fish": "swam in the sea"}
ADJS = ("red", "blue", "big", "small", "happy", "sad")


def lexicon(seed: int = 0) -> dict[str, list[int]]:
    """word -> 2..4 non-silence units without immediate repeats (its fixed pronunciation)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lex = {}
    for w in WORDS:
        units: list[int] = []
        for _ in range(int(rng.integers(2, 5))):
            u = int(rng.integers(1, N_UNITS))
            while units and u == units[-1]:
                u = int(rng.integers(1, N_UNITS))
            units.append(u)
        lex[w] = units
    return lex


def sentence(rng, noun: str | None = None) -> list[str]:
    noun = noun or str(rng.choice(list(NOUNS)))
    return ["the", str(rng.choice(ADJS)), noun, *NOUNS[noun].split()]


def speak(words: list[str], lex: dict[str, list[int]], rng) -> tuple[list, list, list]:
    """(dedup units, durations, [[word, start_s, end_s]]) at 25 Hz, with random pauses."""
    units: list[int] = []
    durs: list[int] = []
    aligned = []
    frame = 0

    def emit(u: int, d: int) -> None:
        if units and units[-1] == u:  # consecutive duplicates merge, as dedup would
            durs[-1] += d
        else:
            units.append(u)
            durs.append(d)

    for w in words:
        if rng.random() < 0.3:
            d = int(rng.integers(1, 4))
            emit(0, d)
            frame += d
        start = frame
        for u in lex[w]:
            d = int(rng.integers(1, 4))
            emit(u, d)
            frame += d
        aligned.append([w, start / 25.0, frame / 25.0])
    return units, durs, aligned


def write_corpus(folder: Path, n: int, seed: int = 0, sentences: int = 3) -> tuple[Path, Path]:
    """Write ``manifest.jsonl`` (id, text, words) and ``units/part.jsonl`` (id, units, durations)."""
    import numpy as np

    from slamlm.io import write_jsonl

    rng = np.random.default_rng(seed)
    lex = lexicon()
    man, recs = [], []
    for i in range(n):
        words = [w for _ in range(sentences) for w in sentence(rng)]
        units, durs, aligned = speak(words, lex, rng)
        rid = f"story/{i:05d}"
        man.append({"id": rid, "text": " ".join(words), "words": aligned})
        recs.append({"id": rid, "units": units, "durations": durs, "n_frames": sum(durs)})
    write_jsonl(folder / "manifest.jsonl", man)
    write_jsonl(folder / "units" / "part.jsonl", recs)
    return folder / "manifest.jsonl", folder / "units"
