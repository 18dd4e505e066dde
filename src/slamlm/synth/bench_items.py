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

from slamlm.synth.stories import (
    PLOTS,
    PRONOUNS,
    _fill,
    an,
    load_lexicon,
    story_parts,
    story_slots,
    story_text,
)

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


# Regularised pasts of the lexicon's irregular verbs: the ungrammatical member of sBLIMP's
# irregular_forms (a child's "eated"), never said by the story grammar.
REGULARISED = {"ran": "runned", "swam": "swimmed", "sang": "singed", "drew": "drawed",
               "built": "builded", "ate": "eated", "drank": "drinked", "found": "finded",
               "lost": "losed", "gave": "gived", "took": "taked", "brought": "bringed",
               "threw": "throwed", "caught": "catched", "hid": "hided", "flew": "flied",
               "rode": "rided", "broke": "breaked", "dug": "digged", "slept": "sleeped",
               "woke": "waked", "made": "maked", "spun": "spinned", "slid": "slided"}


def _blimp_pair(kind: str, r: random.Random) -> tuple[str, str, str]:
    """(subtype, good, bad) for one phenomenon of the story grammar.

    Each good sentence follows a frame the training stories use (``stories.py``) with a
    held-out name in it; the bad one breaks one rule of that grammar.
    """
    lx = load_lexicon()
    name = r.choice(lx["heldout_names"])
    his = PRONOUNS[lx.gender[name]][2]
    animal = r.choice([a for a in lx["animals"] if lx.plurals[a] != a])
    pl = lx.plurals[animal]
    adj, place, num = r.choice(lx["adjectives"]), r.choice(lx["places"]), r.choice(lx["numbers"])
    relative, food = r.choice(lx["relatives"]), r.choice(lx["foods"])
    adv = r.choice(lx["adverbs"])
    there_was = f"Once upon a time, there was {an(adj)} {animal} named {name}."
    there_were = f"There were {num} {adj} {pl} near {name}."
    if kind == "subject_verb_agreement":  # existential was/were with the noun's number
        if r.random() < 0.5:
            return "singular", there_was, there_was.replace(" was ", " were ")
        return "plural", there_were, there_were.replace("There were", "There was")
    if kind == "determiner_noun_agreement":  # a / an before the next sound
        vowel = r.random() < 0.5
        word = r.choice([w for w in lx["adjectives"] + lx["animals"]
                         if (w[0] in "aeiou") == vowel])
        rest = f" {animal}" if word in lx["adjectives"] else ""
        right, wrong = ("an", "a") if vowel else ("a", "an")
        frame = f"At the {place}, {name} saw {{}} {word}{rest}."
        return "a_an", frame.format(right), frame.format(wrong)
    if kind == "noun_number":  # a numeral takes a plural, "a" a singular
        if r.random() < 0.5:
            return "plural", there_were, there_were.replace(f" {pl} ", f" {animal} ")
        return "singular", there_was, there_was.replace(f" {animal} ", f" {pl} ")
    verb = r.choice([v for v in lx["verbs"] if lx.past[v] != v])
    past = lx.past[verb]
    while_frame = f"{name} {{}} {adv} while {his} {relative} ate {an(adj)} {food}."
    if kind == "verb_form":  # "liked to" takes the base form; a story's narration the past
        if r.random() < 0.5:
            frame = f"Every day, {name} liked to {{}} in the {place}."
            return "infinitive", frame.format(verb), frame.format(past)
        return "past", while_frame.format(past), while_frame.format(verb)
    if kind == "irregular_forms":
        irregular, wrong = r.choice(sorted(REGULARISED.items()))
        return "irregular_past", while_frame.format(irregular), while_frame.format(wrong)
    if r.random() < 0.5:  # word_order
        frame = f"At the {place}, {name} saw the {{}}."
        return "adjective_noun", frame.format(f"{adj} {animal}"), frame.format(f"{animal} {adj}")
    obj = r.choice(lx["objects"])
    return ("verb_object", f"{name} gave the {obj} to the {animal}.",
            f"{name} the {obj} gave to the {animal}.")


BLIMP_TYPES = ("subject_verb_agreement", "determiner_noun_agreement", "noun_number",
               "verb_form", "irregular_forms", "word_order")


def blimp_items(n: int, seed: int = 0, k: int = 8) -> list[dict]:
    """``n`` grammatical/ungrammatical sentence pairs across :data:`BLIMP_TYPES`, each with
    ``k`` options of the same phenomenon (other names, words and directions).

    Like the real sBLIMP, which tests rules of the language its models learn from, every
    phenomenon is a rule the story grammar follows (a model can learn it from the stories):
    was/were and a/an agreement, plural after a numeral, the verb form after "liked to" and
    in narration, irregular pasts, adjective-noun and verb-object order.
    """
    out = []
    for i in range(n):
        r = random.Random(f"bench/syntactic/{seed}/{i}")
        kind = BLIMP_TYPES[i % len(BLIMP_TYPES)]
        options: list[list] = []
        for _ in range(20 * k):
            if len(options) >= k:
                break
            sub, good, bad = _blimp_pair(kind, r)
            if [good, bad, {"subtype": sub}] not in options:
                options.append([good, bad, {"subtype": sub}])
        good, bad, extra = options[0]
        out.append({"id": f"b{i:05d}", "type": kind, "subtype": extra["subtype"], "good": good,
                    "bad": bad, "options": options})
    return out


def _cast_words(cast) -> set[str]:
    """The words that tell one story's topic from another's: who and what it is about."""
    lx = load_lexicon()
    return {cast.name.lower(), cast.obj, cast.animal, cast.relative, lx.plurals[cast.food]}


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", text)}


def _other_cast(r: random.Random, cast):
    """The cast of another story that shares none of ``cast``'s topic words."""
    lx = load_lexicon()
    mine = _cast_words(cast)
    for _ in range(100):
        _, other, _ = story_parts(r, [x for x in lx["heldout_names"] if x != cast.name])
        if not _cast_words(other) & mine:
            return other
    return other  # pragma: no cover - the lexicon has dozens of each kind


def _wrong_endings(r: random.Random, plot: str, cast) -> list[str]:
    """sSC: every resolution of every other plot, filled with the same cast."""
    return [_fill(t, cast, r) for oplot in sorted(PLOTS) if oplot != plot for t in PLOTS[oplot][1]]


def _fill_same(tpl: str, casts: list, r: random.Random) -> list[str]:
    """``tpl`` filled once per cast with the same incidental draws (drink, leaf, water)."""
    state, out = r.getstate(), []
    for c in casts:
        r.setstate(state)
        out.append(_fill(tpl, c, r))
    return out


def _cloze_story(r: random.Random, topic: bool) -> tuple[str, list[str], object, str]:
    """(context, resolution templates, cast, plot) of one story-cloze item. tSC keeps a story
    whose context names something a resolution names again (the story's topic carries into
    its ending, as in real tSC), redrawing the story otherwise."""
    lx = load_lexicon()
    for _ in range(200):
        slots, cast, plot = story_slots(r, lx["heldout_names"])
        context = " ".join(s for k, s in slots if k in ("opening", "problem"))
        tpls = list(PLOTS[plot][1])
        if topic:
            shared = _cast_words(cast) & _words(context)
            probe = random.Random(0)
            tpls = [t for t in tpls if _words(_fill(t, cast, probe)) & shared]
        if tpls:
            return context, tpls, cast, plot
    raise RuntimeError("no story-cloze story found in 200 draws")  # pragma: no cover


def cloze_items(n: int, seed: int = 0, topic: bool = False) -> list[dict]:
    """Story-cloze items: ``context`` + correct ending vs wrong ending.

    Like spoken StoryCloze (held-out stories of the training distribution), each item is a
    new story of the story grammar about a held-out character: ``context`` is its opening and
    its problem (two sentences: the story's other sentences add eval time, and a demo-sized
    model does not use them), the correct ending is a resolution of that problem.

    - sSC (``topic=False``): the wrong ending resolves another plot, with the same cast. Options:
      the plot's two resolutions x every resolution of the other plots, naming as many characters (a
      held-out name is unknown to the model and costs many nats, whichever ending says it).
    - tSC: the wrong ending is about another story's characters and things (no topic word in
      common): the same resolution, filled with the other cast, so the pair differs only in
      topic. The correct ending names again someone or something of the context. Options:
      each such resolution x 4 other casts.
    """
    name = "tSC" if topic else "sSC"
    heldout = set(load_lexicon()["heldout_names"])

    def names(text: str) -> int:
        return sum(w in heldout for w in re.findall(r"[A-Za-z]+", text))

    out = []
    for i in range(n):
        r = random.Random(f"bench/{name}/{seed}/{i}")
        options: list[list] = []
        while not options:
            context, tpls, cast, plot = _cloze_story(r, topic)
            if topic:
                others = [_other_cast(r, cast) for _ in range(4)]
                for t in tpls:
                    good, *bads = _fill_same(t, [cast, *others], r)
                    options += [[good, b, {}] for b in bads]
            else:
                goods = [_fill(t, cast, r) for t in tpls]
                options = [[g, b, {}] for g in goods for b in _wrong_endings(r, plot, cast)
                           if names(g) == names(b)]
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
