"""Texts of the synthetic benchmarks (no audio here): word/non-word pairs, grammatical minimal
pairs, story-cloze endings and SALMon sentences. Every sentence names a held-out character
(``heldout_names``), which the training story grammar never uses (see ``stories.py``).

Each sWUGGY, sBLIMP and story-cloze item also carries ``options``: several valid
``[good, bad, extra]`` alternatives (the first is the item's own ``good``/``bad``), among which
``benchmarks.py`` keeps the one whose members are closest in spoken duration (see
``matching.py``). Minimal pairs come in both directions where the phenomenon allows it (the
ungrammatical member is sometimes the longer, sometimes the shorter one), and non-words keep
the word's syllable structure: a chunk is swapped only for one from the same position
(onset, medial consonants, vowel, coda) of another word, so espeak-ng reads the non-word
as a word instead of spelling it out ("wbong" was read "double-u bong").

Example:
    >>> it = blimp_items(1, seed=0)[0]
    >>> sorted(it)
    ['bad', 'good', 'id', 'options', 'subtype', 'type']
    >>> it["options"][0] == [it["good"], it["bad"], {"subtype": it["subtype"]}]
    True
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


def chunk_positions(chunks: list[str]) -> list[str]:
    """Position class of each letter chunk: ``onset``/``medial``/``coda`` for consonant
    clusters (first / inner / last), ``vowel`` or ``final_vowel`` for vowel groups.

    Example:
        >>> chunk_positions(["r", "a", "bb", "i", "t"])
        ['onset', 'vowel', 'medial', 'vowel', 'coda']
    """
    out = []
    for k, c in enumerate(chunks):
        last = k == len(chunks) - 1
        if c[0] in _VOWELS:
            out.append("final_vowel" if last else "vowel")
        else:
            out.append("onset" if k == 0 else "coda" if last else "medial")
    return out


@functools.lru_cache(maxsize=4)
def _donors(pool: tuple[str, ...]) -> dict[str, list[str]]:
    by: dict[str, set[str]] = {}
    for w in pool:
        chunks = _CHUNK.findall(w)
        for c, pos in zip(chunks, chunk_positions(chunks)):
            by.setdefault(pos, set()).add(c)
    return {k: sorted(v) for k, v in by.items()}


def make_nonword(word: str, r: random.Random, pool: list[str]) -> str | None:
    """A pronounceable non-word of similar length: swap one vowel group or consonant cluster
    for one from the same position in another real word; ``None`` if every try is a word."""
    out = nonword_options(word, r, pool, k=1)
    return out[0] if out else None


def nonword_options(word: str, r: random.Random, pool: list[str], k: int = 8,
                    tries: int = 80) -> list[str]:
    """Up to ``k`` distinct non-words made from ``word`` as :func:`make_nonword` does."""
    chunks = _CHUNK.findall(word)
    positions = chunk_positions(chunks)
    donors = _donors(tuple(pool))
    real = known_words()
    out: list[str] = []
    for _ in range(tries):
        if len(out) >= k:
            break
        i = r.randrange(len(chunks))
        same = [d for d in donors.get(positions[i], []) if d != chunks[i]
                and abs(len(d) - len(chunks[i])) <= 1]
        if not same:
            continue
        cand = "".join(chunks[:i] + [r.choice(same)] + chunks[i + 1:])
        if (cand not in real and cand not in out and len(cand) >= 3
                and not re.search(r"(.)\1\1", cand)):
            out.append(cand)
    return out


def wuggy_items(n: int, seed: int = 0, k: int = 16, top_words: int = 0) -> list[dict]:
    """``n`` (word, non-word) pairs, each with up to ``k`` non-word ``options``; ids ``w00000``...

    ``top_words``: draw the words only from the that many most frequent content words of the
    training stories (0: from all of them). Real sWUGGY's words come from the vocabulary of
    the corpus the models learn from; a small model trained for minutes knows only its most
    frequent words, so the demo tests those.
    """
    lx = load_lexicon()
    pool = sorted({w for s in ("animals", "objects", "foods", "places", "adjectives", "verbs")
                   for w in lx[s] if w.isalpha() and 3 <= len(w) <= 10})
    counts = train_word_counts()
    words = (sorted(sorted(pool, key=lambda w: (-counts.get(w, 0), w))[:top_words])
             if top_words > 0 else pool)
    out, i = [], 0
    while len(out) < n:
        r = random.Random(f"bench/lexical/{seed}/{i}")
        word = r.choice(words)
        i += 1
        nonwords = nonword_options(word, r, pool, k)
        if nonwords:
            out.append({"id": f"w{len(out):05d}", "good": word, "bad": nonwords[0],
                        "frequency": counts.get(word, 0),
                        "options": [[word, nw, {}] for nw in nonwords]})
    return out


IRREGULAR = {"ate": "eated", "ran": "runned", "found": "finded", "saw": "seed", "drew": "drawed",
             "gave": "gived", "took": "taked", "threw": "throwed", "caught": "catched",
             "brought": "bringed", "flew": "flied", "rode": "rided"}
PARTICIPLE = {"ate": "eaten", "ran": "run", "saw": "seen", "drew": "drawn", "gave": "given",
              "took": "taken", "threw": "thrown", "flew": "flown", "rode": "ridden"}
INTRANSITIVE = ["slept", "laughed", "yawned", "snored", "giggled", "sneezed", "arrived", "smiled"]
TRANSITIVE = ["found", "liked", "washed", "painted", "carried", "pushed", "fixed", "hugged"]
VERBS_3SG = ["likes", "wants", "sees", "finds", "needs"]


def _agreement(r: random.Random, name: str, obj: str, animal: str, pl: str, adj: str):
    """Subject-verb agreement with a singular or a plural subject (so "-s" is on either side)."""
    v = r.choice(VERBS_3SG)
    a, b = r.choice([("are", "is"), ("were", "was")])
    return r.choice([
        ("simple", f"{name} {v} the {obj}.", f"{name} {v[:-1]} the {obj}."),
        ("simple", f"The {pl} {v[:-1]} the {obj}.", f"The {pl} {v} the {obj}."),
        ("across_prepositional_phrase", f"The {pl} near {name} {a} {adj}.",
         f"The {pl} near {name} {b} {adj}."),
        ("across_prepositional_phrase", f"The {animal} near {name} {b} {adj}.",
         f"The {animal} near {name} {a} {adj}."),
    ])


def _blimp_pair(kind: str, r: random.Random) -> tuple[str, str, str]:
    """(subtype, good, bad) for one phenomenon."""
    lx = load_lexicon()
    name = r.choice(lx["heldout_names"])
    g = lx.gender[name]
    animal, obj = r.choice(lx["animals"]), r.choice(lx["objects"])
    pl = lx.plurals[animal]
    adj = r.choice(lx["adjectives"][:60])
    if kind == "subject_verb_agreement":
        return _agreement(r, name, obj, animal, pl, adj)
    if kind == "determiner_noun_agreement":
        d1, d2 = r.choice([("these", "this"), ("those", "that")])
        if r.random() < 0.5:
            return "plural", f"{name} saw {d1} {pl}.", f"{name} saw {d2} {pl}."
        return "singular", f"{name} saw {d2} {animal}.", f"{name} saw {d1} {animal}."
    if kind == "argument_structure":
        trans, intrans = r.choice(TRANSITIVE), r.choice(INTRANSITIVE)
        if r.random() < 0.5:
            return "transitive", f"{name} {trans} the {obj}.", f"{name} {intrans} the {obj}."
        return "intransitive", f"{name} {intrans}.", f"{name} {trans}."
    if kind == "word_order":
        if r.random() < 0.5:
            return "adjective_noun", f"{name} saw the {adj} {animal}.", f"{name} saw the {animal} {adj}."
        return "subject_verb_object", f"{name} gave the {obj} to the {animal}.", f"{name} the {obj} gave to the {animal}."
    if kind == "anaphor_agreement":
        good, bad = ("herself", "himself") if g == "f" else ("himself", "herself")
        return "anaphor_gender_agreement", f"{name} saw {good} in the mirror.", f"{name} saw {bad} in the mirror."
    if r.random() < 0.5:  # the wrong form is longer ("eated") ...
        past, wrong = r.choice(sorted(IRREGULAR.items()))
        return "irregular_past", f"Yesterday {name} {past} the {obj}.", f"Yesterday {name} {wrong} the {obj}."
    past, part = r.choice(sorted(PARTICIPLE.items()))  # ... or shorter ("had ate")
    return "irregular_participle", f"{name} had {part} the {obj}.", f"{name} had {past} the {obj}."


BLIMP_TYPES = ("subject_verb_agreement", "determiner_noun_agreement", "argument_structure",
               "word_order", "anaphor_agreement", "morphology")


def blimp_items(n: int, seed: int = 0, k: int = 8) -> list[dict]:
    """``n`` grammatical/ungrammatical sentence pairs across :data:`BLIMP_TYPES`, each with
    ``k`` options of the same phenomenon (other names, words and directions)."""
    out = []
    for i in range(n):
        r = random.Random(f"bench/syntactic/{seed}/{i}")
        kind = BLIMP_TYPES[i % len(BLIMP_TYPES)]
        options = []
        while len(options) < k:
            sub, good, bad = _blimp_pair(kind, r)
            if [good, bad, {"subtype": sub}] not in options:
                options.append([good, bad, {"subtype": sub}])
        good, bad, extra = options[0]
        out.append({"id": f"b{i:05d}", "type": kind, "subtype": extra["subtype"], "good": good,
                    "bad": bad, "options": options})
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


def _wrong_endings(r: random.Random, plot: str, cast, topic: bool) -> list[str]:
    """One filled ending of each other plot (sSC: same cast; tSC: another story's cast, an
    ending that names a thing or an animal)."""
    lx = load_lexicon()
    if topic:
        _, cast, _ = story_parts(r, [x for x in lx["heldout_names"] if x != cast.name])
    out = []
    for oplot in sorted(BENCH_PLOTS):
        if oplot == plot:
            continue
        tpls = BENCH_PLOTS[oplot][1]
        if topic:
            tpls = [t for t in tpls if "{obj}" in t or "{animal}" in t] or tpls
        out.append(_fill(r.choice(tpls), cast, r))
    return out


def cloze_items(n: int, seed: int = 0, topic: bool = False) -> list[dict]:
    """Story-cloze items: ``context`` + correct ending vs wrong ending. sSC (``topic=False``):
    the wrong ending resolves another plot with the same cast; tSC: it comes from another
    story about other characters and things. ``options``: every (correct ending, wrong
    ending) combination of the plot's two endings and one ending of each other plot."""
    lx = load_lexicon()
    name = "tSC" if topic else "sSC"
    out = []
    for i in range(n):
        r = random.Random(f"bench/{name}/{seed}/{i}")
        sents, cast, plot = story_parts(r, lx["heldout_names"])
        problem = _fill(r.choice(BENCH_PLOTS[plot][0]), cast, r)
        context = " ".join([sents[0], problem])
        goods = [_fill(t, cast, r) for t in BENCH_PLOTS[plot][1]]
        bads = _wrong_endings(r, plot, cast, topic)
        options = [[g, b, {}] for g in goods for b in bads]
        first = options[r.randrange(len(options))]
        options.remove(first)
        options.insert(0, first)
        out.append({"context": context, "good": first[0], "bad": first[1], "plot": plot,
                    "options": options})
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
