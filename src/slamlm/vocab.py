"""The SpeechLM token vocabulary: specials, then one token per unit (then optional text).

Layout (DESIGN.md): ``<pad>``=0, ``<bos>``=1, ``<eos>``=2, unit ``u`` = token ``3 + u``. The
peer toolkit (slamkit) uses pad=0, ``<S>``=1 as bos and eos, unit ``u`` = ``u + 2``: a model
loaded from a slamkit checkpoint runs in that layout (:meth:`UnitVocab.slamkit`:
``unit_offset=2``, ``bos_id == eos_id == 1``), so its scores are exactly slamkit's. Use
:meth:`UnitVocab.from_peer_tokens` / :meth:`to_peer_tokens` when exchanging raw token ids.
Interleaved (speech + text) models append the text LM's vocabulary and two markers after the
units: see :class:`UnitVocab.text_offset`.

Example:
    >>> v = UnitVocab(n_units=500)
    >>> v.size, v.encode_units([0, 499]).tolist()
    (503, [3, 502])
    >>> v.decode_units(v.encode_units([7, 8])).tolist()
    [7, 8]
    >>> p = UnitVocab.slamkit(500)
    >>> p.size, p.encode_units([0]).tolist(), p.bos_id == p.eos_id
    (502, [2], True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
N_SPECIALS = 3


class VocabError(ValueError):
    """Token/unit ids that do not fit the vocabulary (named record + likely cause)."""


@dataclass(frozen=True)
class UnitVocab:
    """Token ids of a (speech-only or interleaved) SpeechLM.

    ``n_text`` > 0 adds the text LM's own tokens at ``text_offset`` and the ``<text>`` /
    ``<speech>`` markers after them (interleaved models). ``unit_offset`` is the id of unit 0
    (3 here, 2 in slamkit's layout, where ``bos_id == eos_id``); the specials lie below it.
    """

    n_units: int = 500
    n_text: int = 0

    pad_id: int = PAD_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    unit_offset: int = N_SPECIALS

    def __post_init__(self) -> None:
        specials = (self.pad_id, self.bos_id, self.eos_id)
        if min(specials) < 0 or max(specials) >= self.unit_offset:
            raise VocabError(f"special ids {specials} must lie in 0..{self.unit_offset - 1} "
                             f"(below unit_offset {self.unit_offset})")

    @classmethod
    def slamkit(cls, n_units: int = 500) -> UnitVocab:
        """slamkit's layout: pad 0, ``<S>`` = 1 as bos and eos, unit ``u`` = ``u + 2``."""
        return cls(n_units=n_units, pad_id=0, bos_id=1, eos_id=1, unit_offset=2)

    @property
    def text_offset(self) -> int:
        return self.unit_offset + self.n_units

    @property
    def text_marker_id(self) -> int:
        if not self.n_text:
            raise VocabError("this vocabulary has no text tokens (not an interleaved model)")
        return self.text_offset + self.n_text

    @property
    def speech_marker_id(self) -> int:
        return self.text_marker_id + 1

    @property
    def size(self) -> int:
        return self.unit_offset + self.n_units + (self.n_text + 2 if self.n_text else 0)

    def encode_units(self, units: Any, where: str = "units") -> np.ndarray:
        """Unit ids (0..k-1) -> token ids; raises naming ``where`` on out-of-range or
        non-integer units (a float, bool, string or nested list is never silently cast)."""
        try:
            raw = np.asarray(units)
        except (ValueError, TypeError, OverflowError) as e:  # ragged nesting and the like
            raise VocabError(f"{where}: units must be a flat list of integers ({e})") from e
        if raw.ndim > 1:
            raise VocabError(f"{where}: units must be a flat list of integers, found nested "
                             f"lists (shape {raw.shape})")
        if raw.size and raw.dtype.kind not in "iu":
            flat = raw.reshape(-1).tolist()
            first = next((u for u in flat
                          if not isinstance(u, int) or isinstance(u, bool)), flat[0])
            if isinstance(first, int) and not isinstance(first, bool):  # beyond int64
                big = max(flat, key=abs)
                raise VocabError(f"{where}: unit {big} is outside the vocabulary of "
                                 f"{self.n_units} units (was this made with another k-means?)")
            raise VocabError(f"{where}: units must be a flat list of integers, found "
                             f"{first!r} ({type(first).__name__})")
        if raw.size and raw.dtype.kind == "u" and raw.max() >= self.n_units:
            raise VocabError(f"{where}: unit {int(raw.max())} is outside the vocabulary of "
                             f"{self.n_units} units (was this made with another k-means?)")
        arr = raw.astype(np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_units):
            bad = int(arr.max() if arr.max() >= self.n_units else arr.min())
            raise VocabError(
                f"{where}: unit {bad} is outside the vocabulary of {self.n_units} units "
                f"(was this made with another k-means?)"
            )
        return arr + self.unit_offset

    def decode_units(self, tokens: Any) -> np.ndarray:
        """Token ids -> unit ids, dropping specials and non-unit tokens."""
        arr = np.asarray(tokens, dtype=np.int64)
        mask = (arr >= self.unit_offset) & (arr < self.unit_offset + self.n_units)
        return arr[mask] - self.unit_offset

    def is_unit(self, tokens: Any) -> np.ndarray:
        arr = np.asarray(tokens, dtype=np.int64)
        return (arr >= self.unit_offset) & (arr < self.unit_offset + self.n_units)

    def token_names(self) -> list[str]:
        """Readable names: ``<pad> <bos> <eos> <Un0> ...`` (text tokens as ``<T123>``).

        In slamkit's layout bos and eos are one token, ``<S>``.
        """
        names = [f"<special{i}>" for i in range(self.unit_offset)]
        names[self.pad_id] = "<pad>"
        names[self.bos_id], names[self.eos_id] = "<bos>", "<eos>"
        if self.bos_id == self.eos_id:
            names[self.bos_id] = "<S>"
        names += [f"<Un{i}>" for i in range(self.n_units)]
        if self.n_text:
            names += [f"<T{i}>" for i in range(self.n_text)] + ["<text>", "<speech>"]
        return names

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UnitVocab:
        return cls(**{k: int(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    # peer toolkit: pad=0, <S>=1 (bos & eos), unit u = u + 2
    def to_peer_tokens(self, tokens: Any) -> np.ndarray:
        arr = np.asarray(tokens, dtype=np.int64)
        out = np.where(self.is_unit(arr), arr - self.unit_offset + 2, arr)
        out = np.where((arr == self.bos_id) | (arr == self.eos_id), 1, out)
        return out

    def from_peer_tokens(self, peer: Any) -> np.ndarray:
        """Peer ids -> ours; a leading ``<S>`` becomes bos and a trailing one eos."""
        arr = np.asarray(peer, dtype=np.int64)
        out = np.where(arr >= 2, arr - 2 + self.unit_offset, arr)
        if arr.size and arr[0] == 1:
            out[0] = self.bos_id
        if arr.size > 1 and arr[-1] == 1:
            out[-1] = self.eos_id
        return out
