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


def cloze_pairs(n: int, seed: int = 1) -> list[dict]:
    """Cross-modal cloze pairs: "the <adj> <noun>" + its own VP (correct) vs another noun's."""
    import numpy as np

    from slamlm.eval.crossmodal import Story

    rng = np.random.default_rng(seed)
    lex = lexicon()
    nouns = list(NOUNS)
    pairs = []
    for i in range(n):
        noun = nouns[i % len(nouns)]
        wrong = nouns[(i % len(nouns) + 1 + int(rng.integers(0, len(nouns) - 1))) % len(nouns)]
        prompt = sentence(rng) + ["the", str(rng.choice(ADJS)), noun]
        sides = {}
        for name, vp in (("positive", NOUNS[noun]), ("negative", NOUNS[wrong])):
            units, durs, words = speak(prompt + vp.split(), lex, rng)
            sides[name] = Story(words, units, durs)
        pairs.append({"id": str(i), **sides})
    return pairs


def run_demo(work: Path, steps: int = 150, mix: str = "interleaved=0.6,speech=0.2,text=0.2",
             n_stories: int = 400, n_pairs: int = 48, lr: float = 3e-3) -> dict:
    """Init from a tiny text LM, pack a synthetic spoken corpus, pretrain with `fit`, and
    report per-modality validation loss + cross-modal cloze before and after."""
    import torch

    from slamlm.eval.crossmodal import evaluate_crossmodal
    from slamlm.interleave.model import (
        evaluate_modalities,
        interleaved_init,
        load_interleaved,
        save_interleaved,
    )
    from slamlm.interleave.pack import InterleavePackConfig, run_pack_interleaved
    from slamlm.train.config import (
        DataConfig,
        ModelSource,
        OptimConfig,
        PretrainConfig,
        ScheduleConfig,
        TrainConfig,
    )
    from slamlm.train.pretrain import run_pretrain
    from slamlm.vocab import UnitVocab

    work = Path(work)
    lm = work / "lm" if (work / "lm" / "config.json").is_file() else build_text_lm(work / "lm")
    model, meta = interleaved_init(lm, n_units=N_UNITS)
    init = save_interleaved(model, meta, work / "init")
    manifest, units = write_corpus(work / "corpus", n=n_stories)
    tokens = run_pack_interleaved(InterleavePackConfig(
        units=str(units), manifest=str(manifest), out=str(work / "tokens"), init=str(init),
        mix=mix, mean_words=4.0, val_fraction=0.05, context=128))
    pairs = cloze_pairs(n_pairs)

    def measure(folder: Path) -> dict:
        m, meta_, tok = load_interleaved(folder)
        vocab = UnitVocab.from_dict(meta_["vocab"])
        return {"val": evaluate_modalities(m, tokens, "val", context=128),
                "cloze": evaluate_crossmodal(m, vocab,
                                             lambda s: tok.encode(s, add_special_tokens=False),
                                             pairs)}

    before = measure(init)
    cfg = PretrainConfig(out=work / "run", resume="none", device="cpu",
                         model=ModelSource(init=str(init)), data=DataConfig(tokens, 128),
                         train=TrainConfig(batch_size=16, micro_batch=16, precision="fp32",
                                           compile=False),
                         optim=OptimConfig(lr=lr, min_lr=lr / 10),
                         schedule=ScheduleConfig(warmup=0.05, warmup_steps=0, max_steps=steps,
                                                 log_every=steps, eval_every=0, ckpt_every=0))
    torch.manual_seed(0)
    last = run_pretrain(cfg)
    return {"before": before, "after": measure(last), "checkpoint": str(last)}
