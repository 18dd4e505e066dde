"""Story grammar, user text, and train/benchmark disjointness."""

from __future__ import annotations

import json
import re

import pytest

from slamlm.io import ManifestError
from slamlm.synth.bench_items import blimp_items, cloze_items, salmon_sentences
from slamlm.synth.stories import load_lexicon, read_user_text, split_sentences, story_text


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
    for it in cloze_items(100) + cloze_items(100, topic=True):
        bench += split_sentences(it["context"]) + [it["good"], it["bad"]]
    bench += [a + " " + b for a, b in salmon_sentences(100, 0, "speaker_consistency")]
    assert len(bench) > 1000
    assert not set(bench) & train_sents


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
