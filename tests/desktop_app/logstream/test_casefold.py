"""Case-insensitive live-view search through ASCII letter classes (``casefold``)."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from desktop_app.logstream import ring as ring_mod
from desktop_app.logstream.casefold import ascii_folded, has_ascii_folds
from desktop_app.logstream.decode import decode_records
from desktop_app.logstream.filters import FilterSpec, evaluate
from desktop_app.logstream.ring import LogRing

#: haystack alphabet: both cases, the two folding characters, other cased and caseless text
ALPHABET = list("aAbBkKsSxXyYzZeE019 _.-=*{}[]") + ["\u017f", "\u212a", "é", "É", "ß", "Ω", "ω"]
TOKENS = ["a", "B", "k", "S", "s", "x", "é", "Ω", "ß", "\\.", "\\*", "\\{", ".", "\\d", "\\w",
          "\\s", "\\S", "\\b", "[a-z]", "[^aeiou]", "[[:alpha:]]", "[]a]", "[\\]k]", "[K-S]",
          "{", "}", "=", "-", "_"]
QUANTIFIERS = ["", "", "", "*", "+", "?", "{1,2}", "{2}"]


def _random_pattern(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.15 and depth < 2:
            opener = rng.choice(["(", "(?:", f"(?P<g{rng.randint(0, 9)}>"])
            alts = "|".join(_random_pattern(rng, depth + 1) for _ in range(rng.randint(1, 3)))
            parts.append(opener + alts + ")")
        else:
            parts.append(rng.choice(TOKENS))
        parts[-1] += rng.choice(QUANTIFIERS)
    if rng.random() < 0.1:
        parts.insert(0, "^")
    if rng.random() < 0.1:
        parts.append("$")
    return "".join(parts)


def _matches(pattern: str, texts: list[str], ignore_case: bool) -> list[bool]:
    return pc.match_substring_regex(pa.array(texts), pattern,
                                    ignore_case=ignore_case).to_pylist()


def test_folded_pattern_matches_what_ignore_case_matches_on_fold_free_text():
    rng = random.Random(3)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
             for _ in range(3000)]
    texts += ["abc", "ABC", "sk", "SK", "Ωmega", "ωMEGA", "É", "é"]
    plain = [t for t in texts if not has_ascii_folds(t.encode())]
    folded = [t for t in texts if has_ascii_folds(t.encode())]
    assert len(plain) > 500 and len(folded) > 500
    checked = 0
    for _ in range(300):
        pattern = _random_pattern(rng)
        fast = ascii_folded(pattern)
        assert fast is not None, pattern
        want = _matches(pattern, plain, ignore_case=True)
        assert _matches(fast, plain, ignore_case=False) == want, (pattern, fast)
        checked += sum(want)
    assert checked > 10_000  # the patterns do match things


def test_folding_characters_are_exactly_the_two_re2_folds_to_ascii():
    """Every code point outside ASCII that RE2's ignore_case matches to an ASCII letter."""
    cps = [c for c in range(0x80, 0x110000) if not 0xD800 <= c <= 0xDFFF]
    hit = _matches("^[a-z]$", [chr(c) for c in cps], ignore_case=True)
    assert [cps[i] for i in np.flatnonzero(hit)] == [0x17F, 0x212A]
    assert has_ascii_folds("a\u017fb".encode()) and has_ascii_folds("\u212a".encode())
    assert not has_ascii_folds("sk SK éÉ".encode())


@pytest.mark.parametrize("pattern", ["(?i)abc", "(?-i:a)b", "\\pL+", "\\p{Greek}", "\\x41",
                                     "\\Qa.b\\E", "a\\", "[abc", "\\1"])
def test_syntax_not_rewritten_falls_back_to_re2_folding(pattern):
    assert ascii_folded(pattern) is None


def test_rewrite_keeps_repeats_group_names_and_escapes():
    assert (ascii_folded(r"user=(alice|bob)")
            == "[uU][sS][eE][rR]=([aA][lL][iI][cC][eE]|[bB][oO][bB])")
    assert ascii_folded(r"(?P<who>x){2,3}\.\d") == r"(?P<who>[xX]){2,3}\.\d"
    assert ascii_folded("[a-c]é") == "(?i:[a-c])(?i:é)"


def test_a_chunk_holding_long_s_or_kelvin_keeps_re2_folding(monkeypatch):
    """Rows with ſ / K are found by a case-insensitive ``s`` / ``k`` search, as RE2 finds
    them, while the other chunks take the ASCII-class path; the ring marks only their
    chunks."""
    monkeypatch.setattr(ring_mod, "CHUNK_BYTES", 4 << 10)
    words = ["slow query", "SLOW QUERY", "\u017flow query", "Slow \u212aick", "fast", "kick"]
    events = [{"ts": 1_780_000_000_000 + i, "level": "INFO", "message": f"{words[i % 6]} {i}"}
              for i in range(600)]
    # the folding characters only in the last rows: their chunk is marked, earlier ones not
    events = [e for e in events if "\u017f" not in e["message"] and "\u212a" not in e["message"]]
    events += [{"ts": 1_780_000_001_000 + i, "level": "INFO", "message": w}
               for i, w in enumerate(["\u017flow query", "\u212aick"])]
    r = LogRing(10_000, 64 << 20)
    raws = [orjson.dumps(e) for e in events]
    for i in range(0, len(raws), 50):
        r.append(decode_records([(v, None, 0, i + k, 0) for k, v in enumerate(raws[i:i + 50])],
                                r.vocabs))
    marks = [c.folds for c in r.bytes.chunks]
    assert marks[-1] and not any(marks[:-1]) and len(marks) > 3
    texts = [v.decode() for v in raws]
    for spec in (FilterSpec(text="SLOW"), FilterSpec(text="k", regex=True),
                 FilterSpec(text=r"s\w+ (query|kick)", regex=True)):
        want = np.flatnonzero(_matches(spec.text_pattern(), texts, ignore_case=True))
        got = evaluate(spec, r) - r.head
        assert got.tolist() == want.tolist()
        assert {len(texts) - 2, len(texts) - 1} & set(got.tolist())
