"""Access-log regexes (Python and Java agree) and the file tailer (rotation, restart)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.access_log import (
    COMBINED_RE,
    COMMON_RE,
    format_combined,
    format_common,
    parse_line,
)
from pipeline.schemas import EVENT_FIELDS
from pipeline.sources.tailer import FileTailer, identify

COMBINED = ('203.0.113.7 - alice [10/Oct/2025:13:55:36 -0700] "GET /shop/cart?id=7&x=%22 HTTP/1.1"'
            ' 200 2326 "https://example.com/start" "Mozilla/5.0 (X11; Linux) \\"quoted\\" UA"')
LINES = {
    "combined": COMBINED,
    "common": '198.51.100.2 - - [01/Jan/2026:00:00:01 +0000] "POST /api/v1/cart HTTP/2.0" 503 -',
    "no_protocol": '192.0.2.1 - - [01/Jan/2026:00:00:02 +0000] "GET /" 404 12 "-" "curl/8.5.0"',
    "empty_request": '192.0.2.1 - - [01/Jan/2026:00:00:03 +0000] "-" 400 0 "-" "-"',
    "garbage": "this is not an access log line",
}


def test_parse_combined_and_common():
    e = parse_line(COMBINED.encode(), "combined", source="web-01", event_id="id-1")
    assert tuple(e) == EVENT_FIELDS
    assert e == {
        "event_id": "id-1", "ts": 1760129736000, "level": "INFO", "source": "web-01",
        "method": "GET", "endpoint": "/shop/cart", "status": 200, "latency_ms": None,
        "bytes": 2326, "client_ip": "203.0.113.7",
        "user_agent": 'Mozilla/5.0 (X11; Linux) \\"quoted\\" UA',
        "message": "GET /shop/cart?id=7&x=%22 HTTP/1.1",
    }
    c = parse_line(LINES["common"], "common")
    assert (c["level"], c["status"], c["bytes"], c["user_agent"], c["ts"]) == (
        "ERROR", 503, 0, None, 1767225601000)
    assert parse_line(LINES["no_protocol"], "combined")["message"] == "GET /"
    assert parse_line(LINES["empty_request"], "combined") is None
    assert parse_line(LINES["garbage"], "combined") is None
    assert parse_line(COMBINED, "common") is None  # extra fields: not the common format
    with pytest.raises(ValueError, match="unknown access-log format 'xml'"):
        parse_line(COMBINED, "xml")


def test_formatters_round_trip():
    line = format_combined("10.0.0.1", 1767225600123, "GET", "/a b", 404, 0, user_agent='x"y')
    assert parse_line(line, "combined") is None  # a space in the path breaks the request line
    line = format_combined("10.0.0.1", 1767225600123, "GET", "/a", 404, 0, user_agent='x"y')
    e = parse_line(line, "combined")
    assert (e["ts"], e["status"], e["bytes"], e["user_agent"]) == (1767225600000, 404, 0, 'x\\"y')
    assert parse_line(format_common("10.0.0.1", 1767225600000, "PUT", "/b", 201, 5), "common")[
        "bytes"] == 5


def test_java_regex_gives_the_same_groups(tmp_path):
    """The processor hands these patterns to Spark (java.util.regex): same matches, same groups."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java on PATH")
    cases = [(name, pat, line) for name, pat in (("combined", COMBINED_RE), ("common", COMMON_RE))
             for line in LINES.values()]
    src = tmp_path / "RegexCheck.java"
    src.write_text("""
import java.nio.file.*; import java.util.*; import java.util.regex.*;
public class RegexCheck { public static void main(String[] a) throws Exception {
  List<String> in = Files.readAllLines(Path.of(a[0]));
  for (int i = 0; i < in.size(); i += 2) {
    Matcher m = Pattern.compile(in.get(i)).matcher(in.get(i + 1));
    StringBuilder sb = new StringBuilder();
    if (m.find()) { for (int g = 1; g <= m.groupCount(); g++)
      sb.append(m.group(g) == null ? "" : m.group(g)).append('\\u0001'); }
    else sb.append("NOMATCH");
    System.out.println(sb);
  } } }""")
    data = tmp_path / "cases.txt"
    data.write_text("".join(f"{pat}\n{line}\n" for _, pat, line in cases))
    out = subprocess.run([java, str(src), str(data)], capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    import re

    for (_, pat, line), jout in zip(cases, out, strict=True):
        m = re.search(pat, line)
        py = "NOMATCH" if m is None else "".join((g or "") + "\x01" for g in m.groups())
        assert jout == py, line


def write(path: Path, lines: list[str]) -> None:
    with path.open("ab") as fh:
        fh.write("".join(f"{ln}\n" for ln in lines).encode())


def read_all(t: FileTailer, rounds: int = 5) -> list:
    out = []
    for _ in range(rounds):
        out += t.read_lines()
    return out


def texts(lines) -> list[str]:
    return [ln.data.decode() for ln in lines]


def test_complete_lines_only_with_offsets(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"first\r\nsecond\nthi")
    t = FileTailer(log, tmp_path / "state.json")
    got = t.read_lines()
    assert texts(got) == ["first", "second"]
    assert [(ln.offset, ln.end) for ln in got] == [(0, 7), (7, 14)]
    assert t.read_lines() == []
    write(log, ["rd"])
    [third] = t.read_lines()
    assert (third.data, third.offset, third.end) == (b"third", 14, 20)
    ident = identify(log)
    assert {ln.file_id for ln in got} == {ident.file_id}


def test_rename_rotation_drains_old_file_first(tmp_path):
    log = tmp_path / "access.log"
    write(log, ["a1", "a2"])
    t = FileTailer(log, tmp_path / "state.json", grace_s=0.0)
    assert texts(t.read_lines()) == ["a1", "a2"]
    write(log, ["a3", "a4"])  # not read yet when the rotation happens
    os.rename(log, tmp_path / "access.log.1")
    write(log, ["b1"])
    write(tmp_path / "access.log.1", ["a5"])  # the writer had not reopened yet
    got = read_all(t)
    assert texts(got) == ["a3", "a4", "a5", "b1"]
    assert got[0].file_id != got[3].file_id and got[3].offset == 0


def test_copytruncate_reads_the_rest_from_the_copy(tmp_path):
    log = tmp_path / "access.log"
    write(log, ["a1", "a2"])
    t = FileTailer(log, tmp_path / "state.json", grace_s=0.0)
    first = t.read_lines()
    write(log, ["a3"])
    shutil.copyfile(log, tmp_path / "access.log.1")
    os.truncate(log, 0)
    write(log, ["b1", "b2", "b3 is a longer line than before"])  # refilled past the old offset
    got = read_all(t)
    assert texts(got) == ["a3", "b1", "b2", "b3 is a longer line than before"]
    assert got[0].file_id == first[0].file_id and got[0].offset == 6  # the original identity
    assert got[1].file_id != first[0].file_id and got[1].offset == 0


@pytest.mark.parametrize("style", ["rename", "copytruncate"])
def test_restart_resumes_committed_position_across_rotation(tmp_path, style):
    log, state = tmp_path / "access.log", tmp_path / "state.json"
    write(log, ["a1", "a2", "a3"])
    t = FileTailer(log, state, grace_s=0.0)
    got = t.read_lines()
    t.commit(got[1].ident, got[1].end)  # a3 was read but never acked
    t.close()
    write(log, ["a4"])
    if style == "rename":
        os.rename(log, tmp_path / "access.log.1")
    else:
        shutil.copyfile(log, tmp_path / "access.log.1")
        os.truncate(log, 0)
    write(log, ["b1"])
    t2 = FileTailer(log, state, grace_s=0.0)
    again = read_all(t2)
    assert texts(again) == ["a3", "a4", "b1"]
    assert (again[0].file_id, again[0].offset) == (got[2].file_id, got[2].offset)
    saved = json.loads(state.read_text())
    assert saved["offset"] == got[1].end


def test_restart_without_rotation_and_bad_state(tmp_path):
    log, state = tmp_path / "access.log", tmp_path / "state.json"
    write(log, ["a1", "a2"])
    t = FileTailer(log, state)
    got = t.read_lines()
    t.commit(got[-1].ident, got[-1].end)
    write(log, ["a3"])
    assert texts(FileTailer(log, state).read_lines()) == ["a3"]
    assert FileTailer(log, tmp_path / "new.json", start_at="end").read_lines() == []
    state.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        FileTailer(log, state)


def test_overlong_lines_ship_in_pieces(tmp_path):
    log = tmp_path / "access.log"
    log.write_bytes(b"short\n" + b"x" * 2500 + b"\nafter\n" + b"y" * 1200)
    t = FileTailer(log, tmp_path / "s.json", max_line_bytes=1000)
    got = read_all(t)
    assert [len(ln.data) for ln in got] == [5, 1000, 1000, 500, 5, 1000]
    # pieces tile the file: each starts where the previous ended
    assert all(a.end == b.offset for a, b in zip(got, got[1:], strict=False))
    assert got[3].end == 6 + 2501 and got[-1].end == 6 + 2501 + 6 + 1000


@pytest.mark.parametrize("style", ["rename", "copytruncate"])
def test_restart_after_two_rotations_reads_every_file(tmp_path, style):
    log, state = tmp_path / "access.log", tmp_path / "state.json"
    write(log, ["a1", "a2", "a3"])
    t = FileTailer(log, state, grace_s=0.0)
    got = t.read_lines()
    t.commit(got[1].ident, got[1].end)
    t.close()

    def rotate():
        if (tmp_path / "access.log.1").exists():
            os.rename(tmp_path / "access.log.1", tmp_path / "access.log.2")
        if style == "rename":
            os.rename(log, tmp_path / "access.log.1")
        else:
            shutil.copyfile(log, tmp_path / "access.log.1")
            os.truncate(log, 0)

    write(log, ["a4"])
    rotate()
    write(log, ["b1", "b2"])
    rotate()
    write(log, ["c1"])
    (tmp_path / "access.log.3.gz").write_bytes(b"compressed: never read")
    assert texts(read_all(FileTailer(log, state, grace_s=0.0), rounds=8)) == [
        "a3", "a4", "b1", "b2", "c1"]
