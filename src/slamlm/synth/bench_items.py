"""Texts of the synthetic benchmarks (no audio here): word/non-word pairs, grammatical minimal
pairs, story-cloze endings and SALMon sentences. Every sentence names a held-out character
(``heldout_names``), which the training story grammar never uses (see ``stories.py``).

Example:
    >>> it = blimp_items(1, seed=0)[0]
    >>> sorted(it)
    ['bad', 'good', 'id', 'subtype', 'type']
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter

from slamlm.synth.stories import _fill, an, load_lexicon, story_parts, story_text

_VOWELS = "aeiouy"
_CHUNK = re.compile(r"[aeiouy]+|[^aeiouy]+")


@functools.lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Real words: the lexicon, plus CMUdict from the pocketsphinx wheel when installed."""
    lx = load_lexicon()
    words = {w.lower() for sec in lx.sections.values() for e in sec for w in e.split()}
    words |= {w.lower() for w in lx.plurals.values()} | {w.lower() for w in lx.past.values()}
    try:
        import os

        import pocketsphinx

        path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
        with open(path, encoding="utf-8", errors="ignore") as f:
            words |= {line.split(" ", 1)[0].split("(")[0].lower() for line in f if line.strip()}
    except (ImportError, OSError):
        pass
    return frozenset(words)


@functools.lru_cache(maxsize=1)
def train_word_counts() -> Counter:
    """Word counts in the first 2000 training stories (the "frequency" column of sWUGGY)."""
    c: Counter = Counter()
    for i in range(2000):
        c.update(w.lower() for w in re.findall(r"[A-Za-z]+", story_text(i, 0)))
    return c


def phones(word: str) -> str:
    """Letter-chunk pseudo-phones (vowel groups / consonant clusters), space separated."""
    return " ".join(_CHUNK.findall(word.lower()))


def make_nonword(word: str, r: random.Random, pool: list[str]) -> str | None:
    """A pronounceable non-word of similar length: swap one vowel group or consonant cluster
    for one taken from another real word; ``None`` if every try is a real word."""
    chunks = _CHUNK.findall(word)
    donors = [c for w in pool for c in _CHUNK.findall(w)]
    real = known_words()
    for _ in range(40):
        k = r.randrange(len(chunks))
        is_vowel = chunks[k][0] in _VOWELS
        same = [d for d in donors if (d[0] in _VOWELS) == is_vowel and d != chunks[k]
                and abs(len(d) - len(chunks[k])) <= 1]
        if not same:
            continue
        cand = "".join(chunks[:k] + [r.choice(same)] + chunks[k + 1:])
        if cand not in real and len(cand) >= 3 and not re.search(r"(.)\1\1", cand):
            return cand
    return None


def wuggy_items(n: int, seed: int = 0) -> list[dict]:
    """``n`` (word, non-word) pairs; ids ``w00000``..."""
    lx = load_lexicon()
    pool = sorted({w for s in ("animals", "objects", "foods", "places", "adjectives", "verbs")
                   for w in lx[s] if w.isalpha() and 3 <= len(w) <= 10})
    counts = train_word_counts()
    out, i = [], 0
    while len(out) < n:
        r = random.Random(f"bench/lexical/{seed}/{i}")
        word = r.choice(pool)
        i += 1
        nonword = make_nonword(word, r, pool)
        if nonword:
            out.append({"id": f"w{len(out):05d}", "good": word, "bad": nonword,
                        "frequency": counts.get(word, 0)})
    return out


IRREGULAR = {"ate": "eated", "ran": "runned", "found": "finded", "saw": "seed", "drew": "drawed",
             "gave": "gived", "took": "taked", "threw": "throwed", "caught": "catched",
             "brought": "bringed", "flew": "flied", "rode": "rided"}
INTRANSITIVE = ["slept", "laughed", "yawned", "snored", "giggled", "sneezed", "arrived", "smiled"]
TRANSITIVE = ["found", "liked", "washed", "painted", "carried", "pushed", "fixed", "hugged"]


def _blimp_pair(kind: str, r: random.Random) -> tuple[str, str, str]:
    """(subtype, good, bad) for one phenomenon."""
    lx = load_lexicon()
    name = r.choice(lx["heldout_names"])
    g = lx.gender[name]
    animal, obj = r.choice(lx["animals"]), r.choice(lx["objects"])
    pl = lx.plurals[animal]
    adj = r.choice(lx["adjectives"][:60])
    if kind == "subject_verb_agreement":
        if r.random() < 0.5:
            v = r.choice(["likes", "wants", "sees", "finds", "needs"])
            return "simple", f"{name} {v} the {obj}.", f"{name} {v[:-1]} the {obj}."
        a, b = r.choice([("are", "is"), ("were", "was")])
        return "across_prepositional_phrase", f"The {pl} near {name} {a} {adj}.", f"The {pl} near {name} {b} {adj}."
    if kind == "determiner_noun_agreement":
        d1, d2 = r.choice([("these", "this"), ("those", "that")])
        if r.random() < 0.5:
            return "plural", f"{name} saw {d1} {pl}.", f"{name} saw {d2} {pl}."
        return "singular", f"{name} saw {d2} {animal}.", f"{name} saw {d1} {animal}."
    if kind == "argument_structure":
        return "transitive", f"{name} {r.choice(TRANSITIVE)} the {obj}.", f"{name} {r.choice(INTRANSITIVE)} the {obj}."
    if kind == "word_order":
        if r.random() < 0.5:
            return "adjective_noun", f"{name} saw the {adj} {animal}.", f"{name} saw the {animal} {adj}."
        return "subject_verb_object", f"{name} gave the {obj} to the {animal}.", f"{name} the {obj} gave to the {animal}."
    if kind == "anaphor_agreement":
        good, bad = ("herself", "himself") if g == "f" else ("himself", "herself")
        return "anaphor_gender_agreement", f"{name} saw {good} in the mirror.", f"{name} saw {bad} in the mirror."
    past, wrong = r.choice(sorted(IRREGULAR.items()))
    return "irregular_past", f"Yesterday {name} {past} the {obj}.", f"Yesterday {name} {wrong} the {obj}."


BLIMP_TYPES = ("subject_verb_agreement", "determiner_noun_agreement", "argument_structure",
               "word_order", "anaphor_agreement", "morphology")


def blimp_items(n: int, seed: int = 0) -> list[dict]:
    """``n`` grammatical/ungrammatical sentence pairs across :data:`BLIMP_TYPES`."""
    out = []
    for i in range(n):
        r = random.Random(f"bench/syntactic/{seed}/{i}")
        kind = BLIMP_TYPES[i % len(BLIMP_TYPES)]
        sub, good, bad = _blimp_pair(kind, r)
        out.append({"id": f"b{i:05d}", "type": kind, "subtype": sub, "good": good, "bad": bad})
    return out


# Benchmark-only plot sentences: each one names the (held-out) character, so none of them
# can be produced by the training story grammar.
BENCH_PLOTS: dict[str, tuple[list[str], list[str]]] = {
    "lost": (["Then {name} could not find {his} {obj} anywhere.",
              "{Name} looked in {his} bag, but the {obj} was gone."],
             ["At last, {name} found the {obj} under a big {leaf}.",
              "{Name} and {his} {relative} searched until they found the {obj} behind a tree."]),
    "stuck": (["Suddenly, the {obj} of {name} got stuck high up in a tree.",
               "{Name} dropped the {obj} into the {water}, and it started to float away."],
              ["The tall {animal} reached up and got the {obj} down for {name}.",
               "{Name} used a long stick to bring the {obj} back."]),
    "taken": (["Suddenly, a naughty {animal} grabbed the {obj} of {name} and ran away.",
               "{An_animal} came and took the {obj} from {name} without asking."],
              ["The {animal} came back, gave the {obj} to {name} and said sorry.",
               "{Name} asked the {animal} nicely, and the {animal} gave the {obj} back."]),
    "weather": (["Then dark clouds came, and {name} got wet in the heavy rain.",
                 "Then the wind became so strong that {name} felt cold."],
                ["{Name} ran home and drank warm {drink} until the sun came out again.",
                 "{Name} opened a big umbrella and stayed dry."]),
    "hurt": (["{Name} fell down and hurt {his} knee.",
              "{Name} saw that the little {animal} had hurt its leg."],
             ["{Name} put a bandage on it, and soon it felt better.",
              "{Name} took good care of it, and after a few days it was well again."]),
    "hungry": (["After a while, {name} and the {animal} were very hungry.",
                "{Name} wanted to eat, but the basket was empty."],
               ["{Name} brought {foods} for everyone to share.",
                "{Name} picked some {foods}, and they ate them together under a tree."]),
}


def cloze_items(n: int, seed: int = 0, topic: bool = False) -> list[dict]:
    """Story-cloze items: ``context`` + correct ending vs wrong ending. sSC (``topic=False``):
    the wrong ending resolves another plot with the same cast; tSC: it comes from another
    story about other characters and things."""
    lx = load_lexicon()
    name = "tSC" if topic else "sSC"
    out = []
    for i in range(n):
        r = random.Random(f"bench/{name}/{seed}/{i}")
        sents, cast, plot = story_parts(r, lx["heldout_names"])
        problem = _fill(r.choice(BENCH_PLOTS[plot][0]), cast, r)
        context = " ".join([sents[0], problem])
        good = _fill(r.choice(BENCH_PLOTS[plot][1]), cast, r)
        oplot = r.choice([k for k in sorted(BENCH_PLOTS) if k != plot])
        if topic:
            _, other, _ = story_parts(r, [x for x in lx["heldout_names"] if x != cast.name])
            named = [t for t in BENCH_PLOTS[oplot][1] if "{obj}" in t or "{animal}" in t]
            bad = _fill(r.choice(named or BENCH_PLOTS[oplot][1]), other, r)
        else:
            bad = _fill(r.choice(BENCH_PLOTS[oplot][1]), cast, r)
        out.append({"context": context, "good": good, "bad": bad, "plot": plot})
    return out


def salmon_sentences(n: int, seed: int, part: str) -> list[tuple[str, str]]:
    """(first half, second half) sentences to speak in one or two voices."""
    lx = load_lexicon()
    out = []
    for i in range(n):
        r = random.Random(f"bench/salmon/{part}/text/{seed}/{i}")
        name = r.choice(lx["heldout_names"])
        obj, place = r.choice(lx["objects"]), r.choice(lx["places"])
        first = f"{name} took {an(r.choice(lx['adjectives']))} {obj} to the {place}"
        verb = r.choice(["played", "danced", "walked", "sang", "talked", "laughed", "rested"])
        second = f"and then {name} {verb} with the {r.choice(lx['animals'])}."
        out.append((first + ",", second))
    return out
