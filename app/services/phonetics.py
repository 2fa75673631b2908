"""German name matching: the Kölner Phonetik (Postel 1969) and a folded spelling for
fuzzy comparison. Umlauts and their two-letter spellings give the same result:
Müller == Mueller == Muller, Meyer == Maier == Mayr, Strauß == Strauss."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TRANSLITERATE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "œ": "oe", "ø": "oe"})
_TWO_LETTER_UMLAUTS = re.compile(r"(?<=[aou])e")  # "ae", "oe", "ue" → "a", "o", "u" for the code
_NOT_LETTER = re.compile(r"[^a-z]")

_VOWELS = frozenset("aeijouy")
_C_HARD_AT_START = frozenset("ahkloqrux")
_C_HARD = frozenset("ahkoqux")
_SIMPLE = {
    "b": "1", "f": "3", "v": "3", "w": "3", "g": "4", "k": "4", "q": "4",
    "l": "5", "m": "6", "n": "6", "r": "7", "s": "8", "z": "8",
}


@lru_cache(maxsize=65536)
def fold(name: str | None) -> str:
    """Lower-case ASCII letters only, umlauts spelled out: "Müller-Lüdenscheidt" → "muellerluedenscheidt"."""
    if not name:
        return ""
    text = name.strip().lower().translate(_TRANSLITERATE)
    text = unicodedata.normalize("NFKD", text)  # "é" → "e" + combining accent (dropped below)
    return _NOT_LETTER.sub("", text)


@lru_cache(maxsize=65536)
def cologne(name: str | None) -> str:
    """The Kölner-Phonetik code of a name ("" when it has no letters)."""
    word = _TWO_LETTER_UMLAUTS.sub("", fold(name))
    codes: list[str] = []
    for i, char in enumerate(word):
        prev = word[i - 1] if i else ""
        nxt = word[i + 1] if i + 1 < len(word) else ""
        if char in _VOWELS:
            code = "0"
        elif char == "h":
            code = ""
        elif char == "p":
            code = "3" if nxt == "h" else "1"
        elif char in "dt":
            code = "8" if nxt in ("c", "s", "z") else "2"
        elif char == "c":
            if i == 0:
                code = "4" if nxt in _C_HARD_AT_START else "8"
            else:
                code = "4" if nxt in _C_HARD and prev not in ("s", "z") else "8"
        elif char == "x":
            code = "8" if prev in ("c", "k", "q") else "48"
        else:
            code = _SIMPLE.get(char, "")
        codes.append(code)
    # Collapse repeated codes (an "h" between them does not separate them), then drop
    # every "0" but a leading one.
    result: list[str] = []
    last = ""
    for code in codes:
        if not code:
            continue
        for digit in code:
            if digit != last:
                result.append(digit)
            last = digit
    if not result:
        return ""
    return result[0] + "".join(d for d in result[1:] if d != "0")
