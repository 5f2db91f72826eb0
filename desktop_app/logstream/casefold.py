"""Case-insensitive search without RE2's Unicode folding of ``s`` and ``k``.

RE2's ``(?i)`` follows Unicode case folding, in which ``s`` also matches ``ſ`` (U+017F) and
``k`` matches the Kelvin sign ``K`` (U+212A). Those two multi-byte alternatives cost RE2 its
literal-prefix scan: ``slow query`` in any case took 3.4x as long as ``[sS][lL]…``. They are
the only non-ASCII characters that fold to an ASCII letter, so a pattern whose ASCII letters
are written as ``[xX]`` classes and compiled case-sensitively matches exactly what the
original matches with ``ignore_case`` in any text free of those two characters. The ring
marks the chunks that contain either; those keep RE2's own folding.
"""

from __future__ import annotations

import re

#: UTF-8 of the only characters outside ASCII that RE2 folds to an ASCII letter.
FOLDS_TO_ASCII = ("\u017f".encode(), "\u212a".encode())

_REPEAT = re.compile(r"\{\d+(,\d*)?\}")
_GROUP_NAME = re.compile(r"\(\?P?<[A-Za-z_][A-Za-z0-9_]*>")
#: Escapes whose meaning does not depend on case: perl classes, anchors, control characters.
_CASELESS_ESCAPES = set("dDwWsSbBAznrtfva")


def has_ascii_folds(data: bytes, start: int = 0, end: int | None = None) -> bool:
    """Whether ``data[start:end]`` holds a character RE2 folds to an ASCII letter.

    Runs on every append (GUI thread): a one-byte ``find`` of each lead byte is a ``memchr``
    (~20x faster than the two- and three-byte searches), and those run only if one is found.
    """
    end = len(data) if end is None else end
    return any(data.find(needle[:1], start, end) >= 0 and data.find(needle, start, end) >= 0
               for needle in FOLDS_TO_ASCII)


def _class_end(pattern: str, i: int) -> int | None:
    """Index just past the character class that opens at ``pattern[i] == '['``."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # a leading ']' is a literal
        j += 1
    while j < len(pattern):
        ch = pattern[j]
        if ch == "\\":
            if pattern[j + 1:j + 2] in ("Q", ""):
                return None
            j += 2
        elif pattern.startswith("[:", j):
            close = pattern.find(":]", j + 2)
            if close < 0:
                return None
            j = close + 2
        elif ch == "]":
            return j + 1
        else:
            j += 1
    return None


def ascii_folded(pattern: str) -> str | None:
    """``pattern`` for a case-sensitive search that acts as ``ignore_case`` on fold-free text.

    ASCII letters become ``[xX]``; classes and other cased characters keep RE2's folding in
    ``(?i:…)``. None when the pattern uses syntax this does not rewrite (flag groups,
    ``\\Q…\\E``, ``\\p{…}``, ``\\x…``): the caller then uses RE2's ``ignore_case``.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1:i + 2]
            if not nxt or (nxt.isascii() and nxt.isalnum() and nxt not in _CASELESS_ESCAPES):
                return None
            if not nxt.isascii():
                return None
            out.append(ch + nxt)
            i += 2
        elif ch == "[":
            end = _class_end(pattern, i)
            if end is None:
                return None
            out.append(f"(?i:{pattern[i:end]})")
            i = end
        elif ch == "(" and pattern.startswith("(?", i):
            name = _GROUP_NAME.match(pattern, i)
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif name:
                out.append(name.group())
                i = name.end()
            else:
                return None
        elif ch == "{" and (rep := _REPEAT.match(pattern, i)):
            out.append(rep.group())
            i = rep.end()
        elif ch.isascii() and ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
            i += 1
        elif not ch.isascii():  # RE2's folding, whatever Python thinks is cased
            out.append(f"(?i:{ch})")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
