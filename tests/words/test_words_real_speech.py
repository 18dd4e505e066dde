"""Forced alignment of the two real read-speech recordings in tests/fixtures/peer_example
(LibriVox, "Anne of Green Gables", chapter 1): no reference timings exist, so the word starts
are checked against pocketsphinx's own free recognition (language model, no transcript) on
the words both agree on; a wrong transcript must fail, not give times."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pocketsphinx")

from slamlm.audio import load_audio  # noqa: E402
from slamlm.words.forced import AlignError, ForcedAligner, _pcm  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "peer_example"
TEXT = {
    "audio1": "Chapter one. Mrs. Rachel Lynde is surprised. Mrs. Rachel Lynde lived just where "
              "the Avonlea main road dipped down into a little hollow, fringed with alders and "
              "ladies' eardrops and traversed by a brook",
    "audio2": "that had its source away back in the woods of the old Cuthbert place; it was "
              "reputed to be an intricate, headlong brook in its earlier course through those "
              "woods, with dark secrets of pool and cascade; but by the time it reached Lynde's "
              "Hollow it was a quiet, well-conducted little stream",
}


def _recognised(wav: np.ndarray) -> list[tuple[str, float]]:
    from pocketsphinx import Decoder

    d = Decoder(samprate=16000, logfn=os.devnull)
    d.start_utt()
    d.process_raw(_pcm(wav, 0.003), full_utt=True)
    d.end_utt()
    return [(s.word.split("(")[0], s.start_frame / 100 - 0.25) for s in d.seg()
            if not s.word.startswith(("<", "[", "+"))]


@pytest.mark.parametrize("name", sorted(TEXT))
def test_real_speech_alignment(name):
    wav = load_audio(FIX / f"{name}.flac")
    al = ForcedAligner()
    res = al.align(wav, TEXT[name])
    assert len(res.words) == len(TEXT[name].replace("-", " ").split()) - \
        TEXT[name].count("well-conducted")
    assert res.uncovered < 0.35
    assert res.words[-1][2] > len(wav) / 16000 - 1.5  # the words run to the end of the clip
    hyp = _recognised(wav)
    ref = [w.lower() for w, _, _ in res.words]
    sm = difflib.SequenceMatcher(None, ref, [h for h, _ in hyp], autojunk=False)
    errs = [abs(hyp[b.b + i][1] - res.words[b.a + i][1])
            for b in sm.get_matching_blocks() for i in range(b.size)]
    assert len(errs) >= 0.4 * len(res.words)
    assert np.mean(np.array(errs) < 0.1) > 0.8


def test_wrong_transcript_on_real_speech_fails():
    wav = load_audio(FIX / "audio1.flac")
    with pytest.raises(AlignError, match="outside"):
        ForcedAligner().align(wav, "the cat sat on the mat")
    with pytest.raises(AlignError):  # the other clip's words
        ForcedAligner().align(wav, TEXT["audio2"])
