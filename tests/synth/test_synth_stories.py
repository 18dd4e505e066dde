"""Story grammar, user text, and train/benchmark disjointness."""

from __future__ import annotations

import json
import re

import pytest

from slamlm.io import ManifestError
from slamlm.synth.bench_items import blimp_items, cloze_items, salmon_sentences
from slamlm.synth.stories import PLOTS, load_lexicon, read_user_text, split_sentences, story_text


@pytest.fixture(scope="module")
def train_stories() -> list[str]:
    return [story_text(i, seed=0) for i in range(2000)]


def test_stories_deterministic_and_seeded():
    assert story_text(7, seed=3) == story_text(7, seed=3)
    assert story_text(7, seed=3) != story_text(7, seed=4)
    assert story_text(7, seed=3) != story_text(8, seed=3)


def test_stories_distinct_vocab_and_length(train_stories):
    assert len(set(train_stories)) >= 1900
    vocab = {w.lower() for s in train_stories for w in re.findall(r"[A-Za-z']+", s)}
    assert len(vocab) >= 1000, len(vocab)
    lengths = [len(split_sentences(s)) for s in train_stories]
    assert min(lengths) == 3 and max(lengths) == 8
    assert all(s.isascii() for s in train_stories)


def test_heldout_names_never_in_training(train_stories):
    heldout = set(load_lexicon()["heldout_names"])
    assert heldout and not heldout & set(load_lexicon()["names"])
    words = {w for s in train_stories for w in re.findall(r"[A-Za-z]+", s)}
    assert not heldout & words


def test_no_benchmark_sentence_in_training(train_stories):
    train_sents = {s for story in train_stories for s in split_sentences(story)}
    bench = [x for it in blimp_items(300) for x in (it["good"], it["bad"])]
    bench += [a + " " + b for a, b in salmon_sentences(100, 0, "speaker_consistency")]
    heldout = set(load_lexicon()["heldout_names"])
    for it in cloze_items(100) + cloze_items(100, topic=True):
        opening = split_sentences(it["context"])[0]
        assert heldout & set(re.findall(r"[A-Za-z]+", opening)), opening
        bench.append(opening)
    assert len(bench) > 700
    assert not set(bench) & train_sents


def test_cloze_items_are_new_stories_with_familiar_endings(train_stories):
    """Both endings are resolutions the stories use; only the plot tells them apart."""
    resolutions = [re.compile("".join(re.escape(part) if k % 2 == 0 else "[A-Za-z-]+"
                                      for k, part in enumerate(re.split(r"\{(\w+)\}", t))),
                              re.I)
                   for _, ends in PLOTS.values() for t in ends]
    for topic in (False, True):
        items = cloze_items(60, topic=topic)
        # sSC: no "taken" (its endings name the hero); tSC: the plots whose problem names
        # what the resolution names again (lost, stuck, taken)
        assert len({it["plot"] for it in items}) >= (3 if topic else 5)
        for it in items:
            assert it["good"] != it["bad"]
            assert not any(story.startswith(it["context"]) for story in train_stories)
        for e in (x for it in items for x in (it["good"], it["bad"])):
            assert any(t.fullmatch(e) for t in resolutions), e


def test_tsc_pairs_differ_only_in_topic():
    """tSC: same resolution, other story's characters and things; the correct ending repeats
    a word of the context, the wrong one shares no topic word with it. sSC: as many names."""
    lx = load_lexicon()
    heldout = set(lx["heldout_names"])
    topic_words = {w.lower() for sec in ("names", "heldout_names", "animals", "objects",
                                          "relatives") for w in lx[sec]}
    topic_words |= {lx.plurals[f] for f in lx["foods"]} | {"he", "she", "his", "her", "him"}
    for it in cloze_items(60, topic=True):
        for good, bad, _ in it["options"]:
            g, b = good.lower().split(), bad.lower().split()
            assert len(g) == len(b)
            diff = [(x, y) for x, y in zip(g, b) if x != y]
            assert diff and all(x.strip(".,") in topic_words for x, _ in diff), (good, bad)
            context = set(re.findall(r"[a-z]+", it["context"].lower()))
            assert set(re.findall(r"[a-z]+", good.lower())) - {"he", "she", "his", "her", "him"} & context
    for it in cloze_items(60):
        for good, bad, _ in it["options"]:
            count = [sum(w.strip(".,") in heldout for w in x.split()) for x in (good, bad)]
            assert count[0] == count[1], (good, bad)


def _classes(sentence: str) -> list[str]:
    """Words mapped to their lexicon section (ANIMAL, ADJ, NAME ...), others lower-cased."""
    lx = load_lexicon()
    cls: dict[str, str] = {}
    for sec, tag in (("names", "NAME"), ("heldout_names", "NAME"), ("numbers", "NUM"),
                     ("adverbs", "ADV"), ("relatives", "REL"), ("places", "PLACE"),
                     ("adjectives", "ADJ"), ("animals", "ANIMAL"), ("objects", "OBJ"),
                     ("foods", "FOOD")):
        for w in lx[sec]:
            cls.setdefault(w.lower(), tag)
            if w in lx.plurals and lx.plurals[w] != w:
                cls.setdefault(lx.plurals[w].lower(), tag + "S")
    for base, past in lx.past.items():
        if " " not in base and base != past:
            cls.setdefault(past.lower(), "PAST")
            cls.setdefault(base.lower(), "VERB")
    for w in ("a", "an"):
        cls[w] = "ART_" + w
    return [cls.get(w, w) for w in re.findall(r"[a-z]+", sentence.lower())]


def test_blimp_rules_are_the_story_grammars(train_stories):
    """Where the members differ, the good one's word-class bigrams occur in the stories and
    the bad one has a bigram or trigram they never use; 'a'/'an' follow the next word's first
    letter."""
    grams, tris = set(), set()
    for story in train_stories:
        c = _classes(story)
        grams |= set(zip(c, c[1:]))
        tris |= set(zip(c, c[1:], c[2:]))
    ok_good = bad_new = 0
    items = [it for it in blimp_items(240) if it["type"] != "determiner_noun_agreement"]
    for it in items:
        g, b = _classes(it["good"]), _classes(it["bad"])
        gg, bb = set(zip(g, g[1:])), set(zip(b, b[1:]))
        ok_good += gg - bb <= grams
        bad_new += not (bb - gg <= grams and set(zip(b, b[1:], b[2:])) <= tris)
    assert ok_good >= 0.9 * len(items) and bad_new >= 0.9 * len(items), (ok_good, bad_new)
    for it in blimp_items(240):
        if it["type"] == "determiner_noun_agreement":
            m = re.search(r" (an?) (\w+)", it["good"])
            assert (m.group(1) == "an") == (m.group(2)[0] in "aeiou"), it["good"]


def test_read_user_text_txt_and_jsonl(tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("One story\non two lines.\n\n\nSecond story.\n")
    assert read_user_text(txt) == ["One story on two lines.", "Second story."]
    jl = tmp_path / "s.jsonl"
    jl.write_text(json.dumps({"text": "Hello there."}) + "\n" + json.dumps({"text": "Bye."}) + "\n")
    assert read_user_text(jl) == ["Hello there.", "Bye."]
    jl.write_text(json.dumps({"txt": "oops"}) + "\n")
    with pytest.raises(ManifestError, match="record 1.*text"):
        read_user_text(jl)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_user_text(tmp_path / "missing.txt")
