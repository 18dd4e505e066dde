"""Length matching of benchmark pairs: measure candidate texts as spoken, keep the closest.

A content-blind model can win a likelihood benchmark by length alone: summed log-prob
prefers the shorter member, mean log-prob the longer one. So each synthetic item offers
several valid (positive, negative) options and :func:`pick_option` keeps the one whose two
members last most nearly the same when spoken in the item's voices (voiced span, silence at
the edges left out). Among options within ``tol`` seconds of the best, it takes one whose
sign (positive shorter or longer) is the one the item drew, so that over a benchmark the
positive is the shorter member about half of the time.

:class:`Measurer` speaks texts with the benchmark's TTS backend (deterministic, forked
espeak-ng: the same texts always give the same durations), in worker processes, and caches
by (text, voice); it also gives espeak-ng's phonemes (sWUGGY matches phone counts first).

Given a unit counter (``Measurer(units=...)``, e.g. :func:`slamlm.synth.benchmarks.unit_counter`
over a ``slam units`` folder), items are matched in what the model sees first: among the
options, those whose members have the nearest deduplicated unit counts in the item's voices
are kept, and durations decide among them. A model trained on those units then cannot win a
pair by its length in tokens (mean and summed log-prob agree where the counts are equal).

Example:
    >>> durs = [([0.50], [0.62]), ([0.50], [0.47]), ([0.50], [0.53])]  # (pos, neg) per voice
    >>> pick_option(durs, want_shorter=True), pick_option(durs, want_shorter=False)
    (2, 1)
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from slamlm.synth.phonotactics import PhoneBigram, closest_phonotactics, spoken_nonwords
from slamlm.synth.tts import Voice

DEFAULT_TOL = 0.03  # seconds: options this close to the best match count as matched
VoiceKey = tuple[str, int, int]


def speech_seconds(wav: np.ndarray, sr: int = 16000, thresh: float = 0.01) -> float:
    """Seconds from the first to the last 5 ms frame whose peak exceeds ``thresh``.

    Example:
        >>> w = np.zeros(16000, np.float32); w[4000:12000] = 0.5
        >>> speech_seconds(w)
        0.5
    """
    hop = max(1, sr // 200)
    n = len(wav) // hop
    if n == 0:
        return 0.0
    peaks = np.abs(np.asarray(wav[: n * hop], np.float32)).reshape(n, hop).max(axis=1)
    on = np.flatnonzero(peaks > thresh)
    return 0.0 if len(on) == 0 else round(float((on[-1] + 1 - on[0]) * hop / sr), 4)


def pick_option(durations: Sequence[tuple[Sequence[float], Sequence[float]]],
                want_shorter: bool, tol: float = DEFAULT_TOL) -> int:
    """Index of the option whose positive and negative are closest in duration.

    ``durations[i]`` is (positive seconds per voice, negative seconds per voice). The gap of an
    option is the mean over voices of ``pos - neg``. Among options whose |gap| is within
    ``tol`` of the smallest, the closest one with the wanted sign (``want_shorter``: gap < 0)
    wins; if none has that sign, the closest overall.
    """
    gaps = np.array([np.mean(np.subtract(p, n)) for p, n in durations], dtype=np.float64)
    if len(gaps) == 0:
        raise ValueError("pick_option: no options")
    best = float(np.min(np.abs(gaps)))
    near = [i for i in np.argsort(np.abs(gaps), kind="stable") if abs(gaps[i]) <= best + tol]
    signed = [i for i in near if (gaps[i] < 0) == want_shorter and gaps[i] != 0]
    return int(signed[0] if signed else near[0])


def _key(text: str, voice: Voice) -> tuple[str, VoiceKey]:
    return text, (voice.name, voice.rate, voice.pitch)


_TTS: Any = None
Req = tuple[str, Voice]


def _init(backend: str) -> None:
    global _TTS
    # Imported here, once: every group of utterances is spoken in a child forked from this
    # process, which would otherwise import them again each time it resamples or round-trips
    # a waveform (~150 ms per group without bytecode caches: ~40 s of the demo's step).
    import soundfile  # noqa: F401
    import soxr  # noqa: F401

    from slamlm.synth.corpus import _make_backend

    _TTS = _make_backend(backend, deterministic=True)


def _speak_all(reqs: list[Req]) -> list[float]:
    # each text from the pristine engine (isolate, as the files are spoken): espeak-ng carries
    # state from one utterance to the next ("bisoan" lasts 0.44 s alone, 0.43 s after "bison")
    return [speech_seconds(*_TTS.synthesize(t, v)[:2]) for t, v in reqs]


def _pristine(fn, reqs: list[Req]) -> list:  # noqa: ANN001
    """``fn(reqs)`` with every utterance spoken from this worker's never-speaking engine (as the
    benchmark files are), so a text's number is that of its file."""
    if getattr(_TTS, "name", "") == "espeak":
        return _TTS.engine.forked(fn, reqs)
    return fn(reqs)


def _seconds_group(reqs: list[Req]) -> list[float]:
    """Voiced seconds of a group of utterances (see :func:`_pristine`)."""
    return _pristine(_speak_all, reqs)


def _wavs_all(reqs: list[Req]) -> list[tuple[np.ndarray, str]]:
    return [pcm16_file(_TTS.synthesize(t, v)[0]) for t, v in reqs]


def _wavs_group(reqs: list[Req]) -> list[tuple[np.ndarray, str]]:
    """(waveform, sha1 of its WAV file) of a group of utterances (see :func:`_pristine`)."""
    return _pristine(_wavs_all, reqs)


def pcm16_file(wav: np.ndarray) -> tuple[np.ndarray, str]:
    """``wav`` as it reads back from the 16-bit PCM WAV file it is saved to (``save_audio``),
    so units counted from it are the units of the file, and the sha1 of that file's bytes
    (the eval's unit-cache key, :func:`slamlm.io.file_sha1`).

    Example:
        >>> pcm16_file(np.array([0.5, 2.0, -1.0], np.float32))[0].tolist()
        [0.5, 0.999969482421875, -1.0]
    """
    import hashlib
    import io

    import soundfile as sf

    from slamlm.audio import audio_bytes

    data = audio_bytes(wav)
    return sf.read(io.BytesIO(data), dtype="float32")[0], hashlib.sha1(data).hexdigest()


def _phones_all(reqs: list[tuple[str, str]]) -> list[list[str]]:
    return [_TTS.engine._phonemes_here(t, v) for t, v in reqs]


def _phones_group(reqs: list[tuple[str, str]]) -> list[list[str]]:
    return _TTS.engine.forked(_phones_all, reqs)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's CPU threads set to ``n`` inside (0: left as they are): one thread counts units
    beside the speaking workers (2 threads spin-waited against them: the step ran 10% slower
    than counting after all the speaking)."""
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _unseen(groups: Iterable[Iterable[Req]], known: dict) -> list[list[Req]]:
    """Per group, its requests not in ``known`` nor in an earlier group (empty groups go)."""
    seen: set = set(known)
    todo: list[list[Req]] = []
    for g in groups:
        new = [r for r in dict.fromkeys(g) if _key(*r) not in seen]
        seen.update(_key(*r) for r in new)
        if new:
            todo.append(new)
    return todo


class Measurer:
    """Spoken durations (voiced seconds) and phonemes of texts, cached, in worker processes.

    Requests come in groups (one item's texts), one task per group; every text is spoken from
    the never-speaking engine, so its number is its file's, whatever the worker, the order or
    the benchmark size. Use as a
    context manager (the pool is closed on exit). ``workers <= 1`` works in this process
    (espeak-ng speaks only in forked children, so this process's engine stays pristine).

    Example:
        >>> with Measurer(workers=1) as m:                       # doctest: +SKIP
        ...     m.seconds("The cat sat.", Voice("en-us"))
        0.83
    """

    def __init__(self, backend: str = "espeak", workers: int = 2,
                 units: Callable[[list[np.ndarray]], Sequence[Any]] | None = None):
        self.backend, self.workers, self.units = backend, workers, units
        self._dur: dict[tuple[str, VoiceKey], float] = {}
        self._units: dict[tuple[str, VoiceKey], int] = {}
        # sha1 of a spoken text's WAV file -> its deduplicated units, where ``units`` gives
        # unit sequences (not only counts): what the eval would encode from that file
        self.file_units: dict[str, list[int]] = {}
        self._ph: dict[tuple[str, str], list[str]] = {}
        self._pool: Any = None

    def __enter__(self) -> Measurer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def _map(self, fn, groups: list[list]) -> list[list]:  # noqa: ANN001
        return list(self._imap(fn, groups))

    def _imap(self, fn, groups: list[list]) -> Iterator[list]:  # noqa: ANN001
        """``fn`` of each group, in order, as the workers finish them."""
        if self.workers <= 1:
            if _TTS is None:
                _init(self.backend)
            yield from (fn(g) for g in groups)
            return
        if self._pool is None:
            ctx = mp.get_context("spawn")  # fresh engines, never the parent's
            self._pool = ctx.Pool(self.workers, initializer=_init, initargs=(self.backend,))
        yield from self._pool.imap(fn, groups,
                                   chunksize=max(1, min(8, len(groups) // (4 * self.workers))))

    def measure(self, groups: Iterable[Iterable[Req]]) -> None:
        """Speak every (text, voice) not yet measured; ``groups``: one iterable per item."""
        todo = _unseen(groups, self._dur)
        for g, secs in zip(todo, self._map(_seconds_group, todo)):
            for r, sec in zip(g, secs):
                self._dur[_key(*r)] = sec

    def measure_units(self, groups: Iterable[Iterable[Req]], batch: int = 64) -> None:
        """Count the units of every (text, voice) not yet counted: spoken in the workers,
        counted here by ``self.units`` (batches of ``batch`` waveforms), which returns per
        waveform its count or its deduplicated unit sequence (kept in :attr:`file_units`)."""
        if self.units is None:
            raise ValueError("Measurer: no unit counter (Measurer(units=...))")
        reqs: list[Req] = []
        wavs: list[np.ndarray] = []
        stamps: list[str] = []

        def count() -> None:
            with torch_threads(1 if self.workers > 1 else 0):
                got = self.units(wavs)
            for r, u, sha1 in zip(reqs, got, stamps):
                if np.ndim(u):  # a unit sequence
                    self.file_units[sha1] = [int(x) for x in u]
                self._units[_key(*r)] = len(u) if np.ndim(u) else int(u)
            reqs.clear()
            wavs.clear()
            stamps.clear()

        todo = _unseen(groups, self._units)
        # counted here while the workers speak the next groups (not after all of them)
        for g, ws in zip(todo, self._imap(_wavs_group, todo)):
            for r, (w, _) in zip(g, ws):  # the same file's duration: no second synthesis
                self._dur.setdefault(_key(*r), speech_seconds(w))
            reqs += g
            wavs += [w for w, _ in ws]
            stamps += [sha1 for _, sha1 in ws]
            if len(wavs) >= batch:
                count()
        if wavs:
            count()

    def unit_count(self, text: str, voice: Voice) -> int:
        """Deduplicated units of ``text`` spoken in ``voice`` (counted on first use)."""
        if _key(text, voice) not in self._units:
            self.measure_units([[(text, voice)]])
        return self._units[_key(text, voice)]

    def seconds(self, text: str, voice: Voice) -> float:
        """Voiced seconds of ``text`` in ``voice`` (measured on first use)."""
        if _key(text, voice) not in self._dur:
            self.measure([[(text, voice)]])
        return self._dur[_key(text, voice)]

    def phonemes(self, groups: Iterable[Iterable[str]], voice: str = "en-us"
                 ) -> dict[str, list[str]] | None:
        """espeak-ng phonemes of every text (``groups``: one iterable per item); ``None`` for
        a backend without a phonemiser."""
        if self.backend != "espeak":
            return None
        groups = [list(g) for g in groups]
        seen: set = set(self._ph)
        todo: list[list[tuple[str, str]]] = []
        for g in groups:
            new = [(t, voice) for t in dict.fromkeys(g) if (t, voice) not in seen]
            seen.update(new)
            if new:
                todo.append(new)
        for g, phs in zip(todo, self._map(_phones_group, todo)):
            for r, ph in zip(g, phs):
                self._ph[r] = ph
        return {t: self._ph[(t, voice)] for g in groups for t in g}


def balanced_wants(ids: list[str], key: str) -> dict[str, bool]:
    """For each id whether its positive should be the shorter member: exactly half of them
    (a seeded shuffle), so a benchmark's shorter-positive share is ~50% by construction.

    Example:
        >>> w = balanced_wants([f"i{k}" for k in range(10)], "demo")
        >>> sum(w.values())
        5
    """
    import random

    order = list(ids)
    random.Random(key).shuffle(order)
    return {i: k % 2 == 0 for k, i in enumerate(order)}


def _fewest_phone_gap(options: list, ph: dict[str, list[str]] | None) -> list:
    """sWUGGY: keep the options whose non-word has the phone count nearest the word's."""
    if ph is None:
        return options
    gaps = _phone_gaps(options, ph)
    return [o for o, g in zip(options, gaps) if g == min(gaps)]


def _phone_gaps(options: list, ph: dict[str, list[str]]) -> list[int]:
    """Per option: |phones(positive) - phones(negative)| (espeak-ng phonemes ``ph``)."""
    return [abs(len(ph[o[0]]) - len(ph[o[1]])) for o in options]


def unit_gaps(options: list, voices: Sequence[Voice], meas: Measurer) -> list[list[int]]:
    """Per option, per voice: units(positive) - units(negative)."""
    return [[meas.unit_count(o[0], v) - meas.unit_count(o[1], v) for v in voices]
            for o in options]


def nearest_in_units(options: list, gaps: Sequence[Sequence[int]], want_shorter: bool) -> list:
    """The options whose unit gaps (one per voice) are smallest in sum of absolute values;
    when that is not 0, those of them whose positive is shorter (``want_shorter``) or longer
    as drawn, if any.

    Example:
        >>> nearest_in_units(["a", "b", "c", "d"], [[2], [-1], [1], [0]], True)
        ['d']
        >>> nearest_in_units(["a", "b", "c"], [[1, -1], [-1, 0], [0, 1]], False)
        ['c']
    """
    cost = [sum(abs(x) for x in g) for g in gaps]
    near = [(o, sum(g)) for o, g, c in zip(options, gaps, cost) if c == min(cost)]
    signed = [o for o, g in near if g != 0 and (g < 0) == want_shorter]
    return signed or [o for o, _ in near]


def shortlist_by_phones(options: list, ph: dict[str, list[str]], keep: int) -> list:
    """The ``keep`` options whose members' espeak-ng phone counts are nearest (stable order).

    Example:
        >>> ph = {"a b": ["a", "b"], "a": ["a"], "a b c": ["a", "b", "c"]}
        >>> shortlist_by_phones([["a b", "a b c", {}], ["a b", "a", {}], ["a b", "a b", {}]], ph, 2)
        [['a b', 'a b c', {}], ['a b', 'a b', {}]]
    """
    gaps = _phone_gaps(options, ph)
    best = sorted(range(len(options)), key=lambda i: (gaps[i], i))[:keep]
    return [options[i] for i in sorted(best)]


def match_items(items: list[dict], voices: list[list[Voice]], meas: Measurer, key: str,
                phones_first: bool = False, tol: float = DEFAULT_TOL,
                phone_voice: str = "en-us", phonotactics: PhoneBigram | None = None,
                unit_voices: list[list[Voice]] | None = None, shortlist: int = 0
                ) -> list[dict]:
    """Set each item's ``good``/``bad`` (and ``extra`` fields) to its best-matched option.

    ``voices[i]`` are the voices item ``i`` is spoken in; ``key`` seeds the items' wanted signs
    (:func:`balanced_wants`). Returns one record per item: ``id``, ``pos_s``/``neg_s``
    (voiced seconds per voice), ``gap_s`` (mean of pos - neg), ``options`` considered.
    ``phone_voice``: the espeak-ng voice whose phonemes ``phones_first`` counts.
    ``phonotactics``: with ``phones_first``, then keep the non-words whose phone-transition
    score is nearest the word's (Wuggy's matching; :mod:`slamlm.synth.phonotactics`).
    ``unit_voices`` (with a Measurer that counts units): before durations, keep the options
    nearest in deduplicated units in those voices (item ``i``: ``unit_voices[i]``, every voice
    it is spoken in); the records then also hold ``pos_units``/``neg_units`` per voice
    (of ``unit_voices``, by name). ``shortlist > 0``: only that many options per item, the
    nearest in espeak-ng phone count, are spoken for their units (sentences cost more).
    """
    ids = [str(it.get("id", n)) for n, it in enumerate(items)]
    wants = balanced_wants(ids, key)
    ph = None
    if phones_first:
        ph = meas.phonemes(([t for o in it["options"] for t in o[:2]] for it in items),
                           phone_voice)
        for it in items:
            it["options"] = _fewest_phone_gap(it["options"], ph)
            if ph is not None and phonotactics is not None:
                it["options"] = spoken_nonwords(it["options"], ph, phonotactics)
    if unit_voices is not None and shortlist > 0 and not phones_first:
        ph_all = meas.phonemes(([t for o in it["options"] for t in o[:2]] for it in items),
                               phone_voice)
        if ph_all is not None:
            for it in items:
                it["options"] = shortlist_by_phones(it["options"], ph_all, shortlist)
    if unit_voices is not None:
        meas.measure_units([(t, v) for o in it["options"] for v in vs for t in o[:2]]
                           for it, vs in zip(items, unit_voices))
        for ident, it, vs in zip(ids, items, unit_voices):
            it["options"] = nearest_in_units(it["options"], unit_gaps(it["options"], vs, meas),
                                             wants[ident])
    if ph is not None and phonotactics is not None:
        for it in items:
            it["options"] = closest_phonotactics(it["options"], ph, phonotactics)
    meas.measure([(t, v) for o in it["options"] for v in vs for t in o[:2]]
                 for it, vs in zip(items, voices))
    records = []
    for n, (ident, it, vs) in enumerate(zip(ids, items, voices)):
        durs = [([meas.seconds(g, v) for v in vs], [meas.seconds(b, v) for v in vs])
                for g, b, _ in it["options"]]
        j = pick_option(durs, wants[ident], tol)
        good, bad, extra = it["options"][j]
        it.update(good=good, bad=bad, **extra)
        pos, neg = durs[j]
        rec = {"id": ident, "pos_s": pos, "neg_s": neg, "options": len(durs),
               "gap_s": round(float(np.mean(np.subtract(pos, neg))), 4)}
        if unit_voices is not None:
            rec.update(unit_voices=[v.name for v in unit_voices[n]],
                       pos_units=[meas.unit_count(good, v) for v in unit_voices[n]],
                       neg_units=[meas.unit_count(bad, v) for v in unit_voices[n]])
        records.append(rec)
    return records


def match_rates(reqs: list[tuple[str, Voice, Voice]], meas: Measurer,
                step: int = 0) -> list[Voice]:
    """For each (text, target voice, voice): ``voice`` at the rate that speaks ``text`` in the
    duration the target voice takes (SALMon: the other speaker's half lasts as long).

    The rate is guessed from one measurement (duration ~ 1 / rate) and kept if it beats the
    voice's own rate; ``step > 0`` also tries the guess +- ``step`` words per minute."""
    meas.measure([(t, a), (t, b)] for t, a, b in reqs)
    guesses = []
    for t, a, b in reqs:
        r0 = int(round(b.rate * meas.seconds(t, b) / max(meas.seconds(t, a), 1e-3)))
        r0 = min(max(r0, 80), 450)
        rates = {b.rate, r0 - step, r0, r0 + step} if step else {b.rate, r0}
        guesses.append([Voice(b.name, r, b.pitch) for r in sorted(rates)])
    meas.measure([(t, v) for v in vs] for (t, _, _), vs in zip(reqs, guesses))
    return [min(vs, key=lambda v, t=t, a=a: (abs(meas.seconds(t, v) - meas.seconds(t, a)),
                                              abs(v.rate - a.rate)))
            for (t, a, _), vs in zip(reqs, guesses)]


RATE_SPREAD = (-20, -10, 0, 10, 20)  # words per minute around the duration-matched rate


def match_rates_in_units(reqs: list[tuple[str, Voice, Voice]], meas: Measurer, key: str,
                         spread: Sequence[int] = RATE_SPREAD) -> list[Voice]:
    """For each (text, target voice, duration-matched voice): that voice at the rate, of its
    rate + ``spread``, whose deduplicated unit count of ``text`` is nearest the target voice's
    (SALMon: the other speaker's half has as many units as the same speaker's); among equally
    near rates the one nearest in duration. Where no rate matches exactly, the sign of the
    gap is balanced over the items (:func:`balanced_wants` seeded by ``key``), so neither
    member is the shorter one in more than half of them. Needs a Measurer that counts units.

    Example (``meas`` counting units; 3 items)::

        voices = match_rates_in_units([(t, a, b) for t, a, b in reqs], meas, "salmon/0")
    """
    cands = [sorted({Voice(b.name, min(max(b.rate + d, 80), 450), b.pitch) for d in spread},
                    key=lambda v: v.rate) for _, _, b in reqs]
    meas.measure_units([(t, a)] + [(t, v) for v in vs] for (t, a, _), vs in zip(reqs, cands))
    wants = balanced_wants([str(i) for i in range(len(reqs))], key)
    out = []
    for i, ((t, a, b), vs) in enumerate(zip(reqs, cands)):
        gaps = [[meas.unit_count(t, a) - meas.unit_count(t, v)] for v in vs]
        near = nearest_in_units(vs, gaps, wants[str(i)])
        out.append(min(near, key=lambda v, t=t, a=a, b=b: (
            abs(meas.seconds(t, v) - meas.seconds(t, a)), abs(v.rate - b.rate))))
    return out
