"""Pronunciations for words the CMU dictionary lacks: espeak-ng phonemes -> CMU (ARPAbet) phones,
or a plain letter-to-phone fallback when espeak-ng cannot help.

Example:
    >>> espeak_to_cmu(["r", "a", "b", "I", "t"])
    (['R', 'AE', 'B', 'IH', 'T'], [])
    >>> letters_to_cmu("zorb")
    ['Z', 'AA', 'R', 'B']
"""

from __future__ import annotations

# espeak-ng (en-us, ASCII names, stress marks dropped) -> CMU phones of the pocketsphinx model
ESPEAK_TO_CMU: dict[str, tuple[str, ...]] = {
    # vowels and diphthongs
    "a": ("AE",), "aa": ("AE",), "a#": ("AH",), "A:": ("AA",), "A": ("AA",), "A@": ("AA", "R"),
    "aI": ("AY",), "aI@": ("AY", "AH"), "aI3": ("AY", "ER"), "aU": ("AW",),
    "aU@": ("AW", "ER"), "E": ("EH",), "e@": ("EH", "R"), "eI": ("EY",), "I": ("IH",),
    "I2": ("IH",), "I#": ("IH",), "i": ("IY",), "i:": ("IY",), "i@": ("IY", "AH"),
    "i@3": ("IH", "R"), "0": ("AA",), "O:": ("AO",), "O2": ("AO",), "O": ("AO",),
    "O@": ("AO", "R"), "o@": ("AO", "R"), "OI": ("OY",), "oU": ("OW",), "o": ("OW",),
    "@": ("AH",), "@-": ("AH",), "@2": ("AH",), "@5": ("AH",), "@L": ("AH", "L"),
    "@r": ("ER",), "3": ("ER",), "3:": ("ER",), "V": ("AH",), "U": ("UH",), "u:": ("UW",),
    "u": ("UW",), "U@": ("UH", "R"),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "m": ("M",), "n": ("N",), "N": ("NG",),
    "l": ("L",), "r": ("R",), "w": ("W",), "j": ("Y",), "tS": ("CH",), "dZ": ("JH",),
    "t#": ("T",), "t2": ("T",), "d#": ("D",), "?": ("T",), "n-": ("AH", "N"),
    "l-": ("AH", "L"), "m-": ("AH", "M"), "r-": ("R",), "x": ("K",), "C": ("HH",),
    "W": ("W",), "z#": ("Z",), "s#": ("S",),
    # marks that carry no phone of their own (palatalisation, syllable breaks)
    ";": (), "|": (), "-": (),
}

_LETTERS = {"a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH",
            "i": "IH", "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P",
            "q": "K", "r": "R", "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S",
            "y": "Y", "z": "Z"}
_DIGRAPHS = {"th": "TH", "sh": "SH", "ch": "CH", "ng": "NG", "ph": "F", "ee": "IY",
             "oo": "UW", "ck": "K", "qu": "K W", "wh": "W"}
_DIGITS = ("Z IH R OW", "W AH N", "T UW", "TH R IY", "F AO R", "F AY V", "S IH K S",
           "S EH V AH N", "EY T", "N AY N")


def espeak_to_cmu(phonemes: list[str]) -> tuple[list[str], list[str]]:
    """CMU phones of espeak-ng phonemes, and the espeak names that have no mapping (dropped)."""
    out: list[str] = []
    unknown: list[str] = []
    for p in phonemes:
        mapped = ESPEAK_TO_CMU.get(p)
        if mapped is None:  # a variant: "I#"-like marks and digits after the base name
            base = p.rstrip("#-;") or p
            if len(base) > 1:
                base = base.rstrip("0123456789") or base
            mapped = ESPEAK_TO_CMU.get(base)
        if mapped is None:
            unknown.append(p)
            continue
        out.extend(mapped)
    return out, unknown


def letters_to_cmu(word: str) -> list[str]:
    """A crude spelling-based pronunciation (the last resort; always non-empty for a word
    with a letter or digit)."""
    w = word.lower()
    out: list[str] = []
    i = 0
    while i < len(w):
        if w[i:i + 2] in _DIGRAPHS:
            out += _DIGRAPHS[w[i:i + 2]].split()
            i += 2
            continue
        c = w[i]
        if c.isdigit():
            out += _DIGITS[int(c)].split()
        elif c in _LETTERS:
            if not (out and c in "bdfgklmnprstz" and out[-1] == _LETTERS[c]):  # "ll" -> L
                out += _LETTERS[c].split()
        i += 1
    return out
