"""Split a SQL script into statements and map positions, without a Spark round trip.

The split respects Spark SQL's lexical rules that can hide a ``;``: quoted strings
('…' and "…" with backslash escapes), back-quoted identifiers (`` `a;b` ``), ``--`` line
comments and (nestable) ``/* … */`` bracketed comments.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its text (trimmed, no trailing ``;``) and where it sits.

    ``start``/``end`` are character offsets of ``text`` in the script; ``span_end`` includes
    the terminating ``;`` (the cursor right after it still belongs to this statement).
    """

    text: str
    start: int
    end: int
    span_end: int


def _scan(script: str, quoted: list[bool] | None = None) -> tuple[list[int], list[bool]]:
    """Return the offsets of top-level ``;`` and a per-char flag "is code (not comment)";
    ``quoted``, when given, is set True for the characters of quoted strings and names."""
    semis: list[int] = []
    code = [True] * len(script)
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c in ("'", '"', "`"):
            j = i + 1
            while j < n:
                if script[j] == "\\" and c != "`":
                    j += 2
                    continue
                if script[j] == c:
                    if c == "`" and j + 1 < n and script[j + 1] == "`":
                        j += 2
                        continue
                    break
                j += 1
            if quoted is not None:
                quoted[i:j + 1] = [True] * (min(j + 1, n) - i)
            i = j + 1
            continue
        if c == "-" and script.startswith("--", i):
            j = script.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                code[k] = False
            i = j
            continue
        if c == "/" and script.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if script.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif script.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            for k in range(i, min(j, n)):
                code[k] = False
            i = j
            continue
        if c == ";":
            semis.append(i)
        i += 1
    return semis, code


def split_statements(script: str) -> list[Statement]:
    """The script's non-empty statements in order (comment-only chunks are dropped)."""
    semis, code = _scan(script)
    out: list[Statement] = []
    begin = 0
    for stop in [*semis, len(script)]:
        chunk = script[begin:stop]
        has_code = any(code[k] and not script[k].isspace() for k in range(begin, stop))
        if has_code:
            lead = len(chunk) - len(chunk.lstrip())
            text = chunk.strip()
            start = begin + lead
            out.append(Statement(text, start, start + len(text), min(stop + 1, len(script))))
        begin = stop + 1
    return out


def plain_code(script: str) -> list[bool]:
    """Per character: True where it is SQL text itself (not a comment, string or quoted name)."""
    quoted = [False] * len(script)
    _, code = _scan(script, quoted)
    return [c and not q for c, q in zip(code, quoted, strict=True)]


def statement_at(script: str, cursor: int) -> Statement | None:
    """The statement under ``cursor`` (a character offset); between statements, the one
    before the cursor; before the first, the first."""
    stmts = split_statements(script)
    if not stmts:
        return None
    previous = None
    for st in stmts:
        if st.start <= cursor <= max(st.span_end, st.end):
            return st
        if st.start > cursor:
            return previous or st
        previous = st
    return previous


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def offset_of(text: str, line: int, col: int) -> int:
    """Character offset of a 1-based line/column (clamped into the text)."""
    pos = 0
    for _ in range(max(0, line - 1)):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return min(len(text), pos + max(0, col - 1))
