"""espeak-ng through ctypes, from the ``espeakng-loader`` wheel (no system install needed).

The C library keeps global state (one engine per process), and it carries synthesis state
from one utterance to the next (glottal phase, pitch flutter index), so the same text gives
slightly different samples depending on what was spoken before. For byte-identical audio we
fork a child from a process whose engine has been initialised but has never spoken: each
utterance then starts from the same state (``isolate=True``, the default; ~2x slower per
utterance, still far above real time). Use worker processes for parallelism.

Example:
    >>> eng = EspeakEngine.get()
    >>> pcm, sr, events = eng.synth("Hello there.", "en-us", rate=175, pitch=50)
    >>> sr, pcm.dtype, [e.kind for e in events][:2]
    (22050, dtype('int16'), ['sentence', 'word'])
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
from dataclasses import dataclass

import numpy as np

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_DONT_EXIT = 0x8000
_INIT_PHONEME_EVENTS = 0x0001  # also report each phoneme as it starts (audio is unchanged)
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_EVENT_NAMES = {1: "word", 2: "sentence", 5: "end", 6: "msg_end", 7: "phoneme"}
_PHONEMES_SPACED = ord(" ") << 8  # ASCII phoneme names, a space between phonemes
_STRESS = "',%="  # stress / syllabic marks around a phoneme name ("_" tokens are pauses)


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class SynthEvent:
    """A marker from the engine: ``kind`` word/sentence/end/phoneme, ``pos`` 0-based char
    offset, ``length`` chars, ``sample`` index in the engine's output; ``name``: a phoneme
    event's ASCII phoneme name, stress marks dropped ("" for other kinds; "_" names a pause)."""

    kind: str
    pos: int
    length: int
    sample: int
    name: str = ""


PRELOAD_VOICE = "en-us"  # loaded (not spoken) when the engine starts ("": none)


class EspeakError(RuntimeError):
    pass


class EspeakEngine:
    """The process-wide espeak-ng engine (synchronous mode, samples collected by callback)."""

    _instance: EspeakEngine | None = None

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - depends on the install
            raise EspeakError(
                "espeak-ng is not available: pip install 'slamlm[synth]' (espeakng-loader)"
            ) from e
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INIT_DONT_EXIT | _INIT_PHONEME_EVENTS
        )
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak_Initialize failed with data path {data.decode()}")
        self._chunks: list[np.ndarray] = []
        self._events: list[SynthEvent] = []
        self._cb = _Callback(self._on_audio)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._cb)
        # Load a voice's data now, without speaking: every forked child (one per utterance)
        # then starts with it in memory (~30% less time per isolated utterance, 18 -> 14 ms
        # for a sentence). The samples and events are the same bytes as from an engine that
        # never loaded one, in every voice tried (en-us, en-us+f3, en, es, de, hi).
        if PRELOAD_VOICE:
            self.lib.espeak_SetVoiceByName(PRELOAD_VOICE.encode())

    @classmethod
    def get(cls) -> EspeakEngine:
        """The one engine of this process (created on first use)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def _on_audio(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes signature
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while events[i].type != 0:
            e = events[i]
            if e.type in _EVENT_NAMES:
                name = e.id.decode("ascii", "replace").strip(_STRESS) if e.type == 7 else ""
                self._events.append(SynthEvent(
                    _EVENT_NAMES[e.type], e.text_position - 1, e.length, e.sample, name))
            i += 1
        return 0

    def _synth_here(self, text: str, voice: str, rate: int, pitch: int, seed: int):
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r} (see validate_voice)")
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self.lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(
            ctypes.c_char_p(data), len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        if err != 0:
            raise EspeakError(f"espeak_Synth failed (code {err}) for text {text[:60]!r}")
        self.lib.espeak_Synchronize()
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return pcm.astype(np.int16, copy=False), list(self._events)

    def synth(
        self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
        seed: int = 0, isolate: bool = True,
    ) -> tuple[np.ndarray, int, list[SynthEvent]]:
        """Speak ``text``; returns (int16 samples, sample rate, events)."""
        if not isolate or not hasattr(os, "fork"):
            pcm, events = self._synth_here(text, voice, rate, pitch, seed)
            return pcm, self.sample_rate, events
        raw, events = self.forked(self._synth_bytes, text, voice, rate, pitch, seed)
        return np.frombuffer(raw, np.int16).copy(), self.sample_rate, events

    def _synth_bytes(self, *args) -> tuple[bytes, list[SynthEvent]]:
        pcm, events = self._synth_here(*args)
        return pcm.tobytes(), events

    def _phonemes_here(self, text: str, voice: str) -> list[str]:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r} (see validate_voice)")
        fn = self.lib.espeak_TextToPhonemes
        fn.restype = ctypes.c_char_p
        fn.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        buf = ctypes.c_char_p(text.encode("utf-8"))
        out: list[str] = []
        while buf.value:  # one clause per call; the pointer moves on
            res = fn(ctypes.byref(buf), _CHARS_UTF8, _PHONEMES_SPACED)
            out += [p.strip(_STRESS) for p in (res or b"").decode().split()]
        return [p for p in out if p and not p.startswith("_")]

    def phonemes(self, text: str, voice: str = "en-us") -> list[str]:
        """espeak-ng's phonemes of ``text`` (ASCII names, stress marks dropped), worked out in
        a forked child so this engine's synthesis state is left as it was.

        Example:
            >>> EspeakEngine.get().phonemes("rabbit")
            ['r', 'a', 'b', 'I', 't']
        """
        if not hasattr(os, "fork"):
            return self._phonemes_here(text, voice)
        return self.forked(self._phonemes_here, text, voice)

    def forked(self, fn, *args):  # noqa: ANN001, ANN202 - any picklable result
        """Run ``fn(*args)`` in a child forked from this process and return its (picklable)
        result: the child starts from this engine's state, which it leaves as it was."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: work from the pristine state, send result, exit at once
            try:  # the child must never return into the parent's code (e.g. a dead parent
                os.close(r)  # makes the write raise BrokenPipeError): always os._exit
                try:
                    payload = pickle.dumps((fn(*args), None))
                except BaseException as e:  # noqa: BLE001 - report any failure to the parent
                    payload = pickle.dumps((None, f"{type(e).__name__}: {e}"))
                with os.fdopen(w, "wb") as f:
                    f.write(struct.pack("<Q", len(payload)) + payload)
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if len(data) < 8:
            raise EspeakError(f"espeak-ng child process died on {str(args[0])[:60]!r}")
        result, err = pickle.loads(data[8:])
        if err:
            raise EspeakError(err)
        return result


def _data_dir(*parts: str) -> str:
    import espeakng_loader

    return os.path.join(espeakng_loader.get_data_path(), *parts)


def list_voices(prefix: str = "en") -> list[str]:
    """Language voice names in the bundled data whose name starts with ``prefix``
    (case-insensitive; ``""``: all of them, e.g. ``es``, ``es-419``, ``hi``, ``ru``, ``el``)."""
    out = []
    for _dirpath, _, files in os.walk(_data_dir("lang")):
        out += [f for f in files if f.lower().startswith(prefix.lower())]
    return sorted(out)


def voice_names() -> dict[str, str]:
    """Voice -> language name from its data file (``es`` -> ``Spanish (Spain)``)."""
    out = {}
    for dirpath, _, files in os.walk(_data_dir("lang")):
        for f in files:
            with open(os.path.join(dirpath, f), encoding="utf-8", errors="ignore") as fh:
                out[f] = next((ln[5:].strip() for ln in fh if ln.startswith("name ")), f)
    return out


def list_variants() -> list[str]:
    """Voice variants (``+f3``, ``+m3``, ``+klatt`` ...) that combine with any language."""
    root = _data_dir("voices", "!v")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def variant_gender(variant: str) -> str | None:
    """``"f"``/``"m"`` from a variant's ``gender`` line, ``None`` when it has none."""
    try:
        with open(_data_dir("voices", "!v", variant), encoding="utf-8", errors="ignore") as f:
            for line in f:
                key, _, val = line.strip().partition(" ")
                if key == "gender" and val.strip():
                    return "f" if val.strip().lower().startswith("f") else "m"
    except OSError:
        return None
    return None


def validate_voice(name: str) -> str:
    """``name`` if espeak-ng has it (``lang`` or ``lang+variant``), else ``ValueError`` naming
    close voice names.

    Example:
        >>> validate_voice("es+f3")
        'es+f3'
        >>> validate_voice("spanish")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: espeak-ng has no voice 'spanish': close names: es-419, es...
    """
    import difflib

    base, _, variant = name.partition("+")
    voices = list_voices("")
    lower = {v.lower(): v for v in voices}
    if base.lower() not in lower:
        close = difflib.get_close_matches(base.lower(), list(lower), n=5, cutoff=0.5)
        close += [v for v in lower if v.startswith(base.lower()[:2]) and v not in close][:5]
        close += [v.lower() for v, lang in voice_names().items()  # "spanish" -> es, es-419
                  if len(base) > 2 and base.lower() in lang.lower()]
        hint = ", ".join(lower[c] for c in list(dict.fromkeys(close))[:6]) or "en-us, es, fr, de, hi, ru"
        raise ValueError(f"espeak-ng has no voice {name!r}: close names: {hint} "
                         f"(all {len(voices)}: python -c 'from slamlm.synth.espeak import "
                         "list_voices; print(list_voices(\"\"))')")
    variants = list_variants()
    if variant and variant not in variants:
        close = difflib.get_close_matches(variant, variants, n=5, cutoff=0.4)
        raise ValueError(f"espeak-ng has no voice variant +{variant} (in {name!r}): close "
                         f"names: {', '.join('+' + c for c in close) or '+f3, +m3'}")
    return name
