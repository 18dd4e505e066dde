"""Text sources: a built-in TinyStories-like story grammar and user text files.

Stories are built from a lexicon (``resources/synth/lexicon.txt``: names, animals, objects,
foods, places, adjectives, feelings, verbs ...) and a small plot grammar: opening -> (trait)
-> (setting) -> problem -> (attempts) -> resolution -> (feeling) -> (ending), 3-8 sentences.
Each story has its own ``random.Random(f"story/{seed}/{index}")`` (string seeds hash with
SHA-512, so they do not depend on PYTHONHASHSEED), never the global RNG.

Train/benchmark disjointness: training stories use only ``names`` from the lexicon;
benchmark sentences (see ``benchmarks.py``) always name a character from ``heldout_names``,
which the story grammar never uses, and use their own seed streams (``bench/...``). So no
benchmark sentence can appear in a training story (checked by a test on 2000 stories).

Example:
    >>> s = story_text(0, seed=0)
    >>> 3 <= len(split_sentences(s)) <= 8
    True
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from slamlm.io import ManifestError


@dataclass(frozen=True)
class Lexicon:
    """Word lists by section; nouns map singular -> plural, verbs base -> past."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    plurals: dict[str, str] = field(default_factory=dict)
    past: dict[str, str] = field(default_factory=dict)
    gender: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> list[str]:
        return self.sections[key]


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


@functools.lru_cache(maxsize=1)
def load_lexicon() -> Lexicon:
    """Parse the packaged lexicon (cached)."""
    text = resources.files("slamlm.resources").joinpath("synth/lexicon.txt").read_text()
    sections: dict[str, list[str]] = {}
    plurals, past, gender = {}, {}, {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        items = [line] if current == "activities" else line.split()
        for item in items:
            head, _, tail = item.partition("|" if current == "activities" else ":")
            sections[current].append(head)
            if current in ("names", "heldout_names"):
                gender[head] = tail or "f"
            elif current == "verbs" or current == "activities":
                past[head] = tail or head + "ed"
            elif current in ("animals", "objects", "foods"):
                plurals[head] = tail or _plural(head)
    return Lexicon(sections, plurals, past, gender)


PRONOUNS = {"f": ("she", "her", "her", "herself"), "m": ("he", "him", "his", "himself")}


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def an(word: str) -> str:
    """'a' or 'an' before ``word``."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


@dataclass
class Cast:
    """Who and what a story is about (filled once, used by every sentence)."""

    name: str
    g: str
    kind: str
    animal: str
    obj: str
    place: str
    relative: str
    food: str
    adj: str
    color: str

    @property
    def he(self) -> str:
        return PRONOUNS[self.g][0]

    @property
    def him(self) -> str:
        return PRONOUNS[self.g][1]

    @property
    def his(self) -> str:
        return PRONOUNS[self.g][2]


def make_cast(rng: random.Random, names: list[str] | None = None) -> Cast:
    lx = load_lexicon()
    name = rng.choice(names or lx["names"])
    g = lx.gender.get(name, "f")
    kind = rng.choice(["girl" if g == "f" else "boy", *lx["animals"]])
    colors = lx["adjectives"][lx["adjectives"].index("red"): lx["adjectives"].index("magic") + 1]
    return Cast(
        name=name, g=g, kind=kind, animal=rng.choice([a for a in lx["animals"] if a != kind]),
        obj=rng.choice(lx["objects"]), place=rng.choice(lx["places"]),
        relative=rng.choice(lx["relatives"]), food=rng.choice(lx["foods"]),
        adj=rng.choice([a for a in lx["adjectives"] if a not in colors]), color=rng.choice(colors),
    )


def _opening(c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    w, t = r.choice(lx["weather"]), r.choice(lx["times"])
    return r.choice([
        f"Once upon a time, there was {an(c.adj)} {c.kind} named {c.name}.",
        f"{c.name} was {an(c.adj)} {c.kind} who lived near the {c.place}.",
        f"One {w} {t}, {an(c.adj)} {c.kind} called {c.name} woke up early.",
        f"There once was {an(c.kind)} named {c.name} who was very {r.choice(lx['adjectives'][:80])}.",
        f"Long ago, in a {r.choice(['small', 'quiet', 'busy', 'sunny'])} {r.choice(['town', 'village', 'city'])}, lived {an(c.kind)} named {c.name}.",
    ])


def _trait(c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    act = r.choice(lx["activities"])
    return r.choice([
        f"{cap(c.he)} loved to {act} with {c.his} {c.relative}.",
        f"{cap(c.he)} had {an(c.color)} {c.obj} that {c.he} loved very much.",
        f"Every day, {c.he} liked to {r.choice(lx['verbs'])} in the {c.place}.",
        f"{c.name} liked to eat {lx.plurals[c.food]} and {r.choice(lx['drinks'])} for breakfast.",
    ])


def _setting(c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    return r.choice([
        f"One {r.choice(lx['weather'])} {r.choice(lx['times'])}, {c.name} went to the {c.place} with {c.his} {c.relative}.",
        f"At the {c.place}, {c.he} saw {an(r.choice(lx['adjectives'][:60]))} {c.animal}.",
        f"{cap(c.he)} took {c.his} {c.color} {c.obj} to the {c.place}.",
        f"The {c.animal} said, \"Hello, {c.name}! Do you want to {r.choice(lx['activities'])}?\"",
    ])


# problem kind -> (problem templates, resolution templates)
PLOTS: dict[str, tuple[list[str], list[str]]] = {
    "lost": (["Then {name} could not find {his} {obj} anywhere.",
              "But when {he} looked in {his} bag, the {obj} was gone."],
             ["At last, {he} found the {obj} under a big {leaf}.",
              "{His} {relative} helped {him}, and soon they found the {obj} behind a tree."]),
    "stuck": (["Suddenly, the {obj} got stuck high up in a tree.",
               "Oh no, the {obj} fell into the {water} and started to float away."],
              ["The tall {animal} reached up and got the {obj} down for {him}.",
               "{His} {relative} used a long stick to bring the {obj} back."]),
    "taken": (["Suddenly, a naughty {animal} grabbed the {obj} and ran away.",
               "{An_animal} came and took the {obj} without asking."],
              ["The {animal} came back, gave the {obj} to {name} and said sorry.",
               "{Name} asked the {animal} nicely, and the {animal} gave the {obj} back."]),
    "weather": (["Then dark clouds came and it started to rain very hard.",
                 "Then the wind became so strong that {he} felt cold."],
                ["They ran home and drank warm {drink} until the sun came out again.",
                 "{His} {relative} opened a big umbrella, and they all stayed dry."]),
    "hurt": (["{Name} fell down and hurt {his} knee.",
              "The little {animal} hurt its leg and could not walk."],
             ["{His} {relative} put a bandage on it, and soon it felt better.",
              "They took good care of it, and after a few days it was well again."]),
    "hungry": (["After a while, {name} and the {animal} were very hungry.",
                "{Name} wanted to eat, but the basket was empty."],
               ["{His} {relative} brought {foods} for everyone to share.",
                "They picked some {foods} and ate them together under a tree."]),
}


def _fill(tpl: str, c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    s = tpl.format(
        name=c.name, Name=c.name, he=c.he, He=cap(c.he), his=c.his, His=cap(c.his), him=c.him,
        obj=c.obj, animal=c.animal, An_animal=cap(an(c.animal)), relative=c.relative, drink=r.choice(lx["drinks"]),
        foods=lx.plurals[c.food], leaf=r.choice(["leaf", "rock", "bench", "bush", "box"]),
        water=r.choice(["river", "pond", "lake"]),
    )
    return cap(s)


def _detail(c: Cast, r: random.Random) -> str:
    """A descriptive sentence drawing on the whole lexicon (variety of words)."""
    lx = load_lexicon()
    adj, adv = r.choice(lx["adjectives"]), r.choice(lx["adverbs"])
    verb = lx.past[r.choice(lx["verbs"])]
    animal, obj = r.choice(lx["animals"]), r.choice(lx["objects"])
    num = r.choice(lx["numbers"])
    return r.choice([
        f"There were {num} {adj} {lx.plurals[animal]} near the {r.choice(lx['places'])}.",
        f"{cap(c.he)} saw {an(adj)} {obj} next to {an(r.choice(lx['adjectives']))} {r.choice(lx['objects'])}.",
        f"The {animal} {verb} {adv} and went \"{r.choice(lx['sounds'])}!\"",
        f"{c.name} {verb} {adv} while {c.his} {c.relative} ate {an(adj)} {r.choice(lx['foods'])}.",
        f"In the {r.choice(lx['places'])}, {num} {lx.plurals[obj]} lay on the ground.",
        f"{cap(c.his)} {c.relative} {verb} the {adj} {obj} and laughed.",
    ])


def _attempt(c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    return r.choice([
        f"{c.name} felt {r.choice(lx['feelings'][8:16])} and did not know what to do.",
        f"{cap(c.he)} asked {c.his} {c.relative} for help.",
        f"{cap(c.he)} tried and tried, but it was too hard.",
        f"The {c.animal} said, \"Don't worry, I will help you!\"",
        f"They {r.choice(['walked', 'ran', 'looked'])} {r.choice(lx['adverbs'])} all around the {c.place}.",
    ])


def _feeling(c: Cast, r: random.Random) -> str:
    lx = load_lexicon()
    return r.choice([
        f"{c.name} felt {r.choice(lx['feelings'][:8])} and gave {c.his} {c.relative} a big hug.",
        f"Everyone laughed, and the {c.animal} did a {r.choice(lx['adjectives'][:40])} dance.",
        f"{cap(c.he)} smiled and said, \"Thank you so much!\"",
    ])


def _ending(c: Cast, r: random.Random) -> str:
    return r.choice([
        f"From that day on, {c.name} and the {c.animal} were best friends.",
        f"{c.name} learned that it is good to {r.choice(['share', 'be kind', 'ask for help', 'be brave', 'be patient'])}.",
        f"That night, {c.name} went to bed {r.choice(['happy', 'tired', 'smiling'])} and dreamed about the {c.place}.",
        "The end.",
    ])


def story_slots(rng: random.Random, names: list[str] | None = None
                ) -> tuple[list[tuple[str, str]], Cast, str]:
    """(slot, sentence) pairs of one story (3-8 sentences, in order), its cast and plot kind.

    Slots: opening, trait, setting, detail, problem, attempt, attempt2, resolution, feeling,
    ending; opening, problem and resolution are always there.
    """
    c = make_cast(rng, names)
    kind = rng.choice(sorted(PLOTS))
    problems, resolutions = PLOTS[kind]
    n = rng.randint(3, 8)
    optional = ["trait", "setting", "detail", "attempt", "attempt2", "feeling", "ending"]
    keep = set(rng.sample(optional, n - 3))
    slots = {
        "opening": lambda: _opening(c, rng),
        "trait": lambda: _trait(c, rng),
        "setting": lambda: _setting(c, rng),
        "detail": lambda: _detail(c, rng),
        "problem": lambda: _fill(rng.choice(problems), c, rng),
        "attempt": lambda: _attempt(c, rng),
        "attempt2": lambda: _attempt(c, rng),
        "resolution": lambda: _fill(rng.choice(resolutions), c, rng),
        "feeling": lambda: _feeling(c, rng),
        "ending": lambda: _ending(c, rng),
    }
    order = ["opening", "trait", "setting", "detail", "problem", "attempt", "attempt2", "resolution",
             "feeling", "ending"]
    kept = [(k, slots[k]()) for k in order if k in keep or k in ("opening", "problem", "resolution")]
    return kept, c, kind


def story_parts(rng: random.Random, names: list[str] | None = None) -> tuple[list[str], Cast, str]:
    """Sentences of one story (3-8), its cast and its plot kind (see :func:`story_slots`)."""
    kept, c, kind = story_slots(rng, names)
    return [s for _, s in kept], c, kind


def story_text(index: int, seed: int = 0) -> str:
    """Story number ``index`` of the stream ``seed`` (deterministic)."""
    sents, _, _ = story_parts(random.Random(f"story/{seed}/{index}"))
    return " ".join(sents)


def split_sentences(text: str) -> list[str]:
    """Split after . ! ? (and a closing quote), never inside a quotation.

    Example:
        >>> split_sentences('He said, "Hi! Go." Then he left.')
        ['He said, "Hi! Go."', 'Then he left.']
    """
    text = text.strip()
    out, start = [], 0
    for m in re.finditer(r"[.!?]\"?\s+(?=[A-Z\"])", text):
        head = text[start:m.end()]
        if head.count('"') % 2 == 0:
            out.append(head.strip())
            start = m.end()
    tail = text[start:].strip()
    return out + ([tail] if tail else [])


def is_text_container(path: str | Path) -> bool:
    """A corpus container (HF dataset, parquet, tar shards, lhotse manifest, folder) rather
    than a plain ``.txt`` / ``{"text"}`` ``.jsonl`` file."""
    from slamlm.corpora import detect_format

    s, p = str(path), Path(str(path))
    if "{" in s or p.is_dir() or s.endswith((".parquet", ".tar")):
        return True
    return p.is_file() and s.endswith((".jsonl", ".jsonl.gz")) and detect_format(p) == "lhotse"


def read_user_text(path: str | Path, split: str | None = None,
                   text_column: str | None = None) -> list[str]:
    """Stories from a ``.txt`` (blank-line separated paragraphs) or ``.jsonl`` (``text``), or
    the texts of a corpus container (``slamlm.corpora.list_texts``: a parquet/HF dataset's text
    column, LibriSpeech transcripts, tar ``.txt`` members, lhotse supervisions)."""
    if is_text_container(path):
        from slamlm.corpora import list_texts

        return [t for _, t in list_texts(path, split=split, text_column=text_column)]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: text file does not exist")
    if path.suffix in (".jsonl", ".gz"):
        from slamlm.io import read_jsonl

        out = []
        for i, r in enumerate(read_jsonl(path, cut_tail="error"), 1):
            if not isinstance(r.get("text"), str) or not r["text"].strip():
                raise ManifestError(f"{path} record {i}: needs a non-empty \"text\" field")
            out.append(" ".join(r["text"].split()))
        if not out:
            raise ManifestError(f"{path}: no records (the file is empty); give one "
                                f"{{\"text\": ...}} object per line")
        return out
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); give "
                            f"plain text, stories separated by a blank line") from e
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not paras:
        raise ManifestError(f"{path}: no usable text (the file is empty or only whitespace); "
                            f"give stories separated by a blank line")
    return paras
