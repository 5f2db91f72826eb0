"""Access-log format strings (nginx ``log_format``, Apache ``LogFormat``, W3C ``#Fields:``)
compiled once into one regex plus a group -> field mapping, used by Python and Spark alike.

Like :mod:`pipeline.access_log`, the regex uses only syntax both Python ``re`` and Java
``java.util.regex`` read the same way (numbered groups, ASCII classes, lazy ``*?``), so the
Spark parser hands it to ``regexp_extract`` and :func:`parse` here gives the same answer.

What a variable becomes is its *role* (:data:`NGINX_VARIABLES`, :data:`APACHE_DIRECTIVES`,
:data:`W3C_FIELDS`): ``client_ip``, ``ts`` (with a time kind), ``request`` (split into
method / target / protocol), ``method``, ``path``, ``query``, ``protocol``, ``status``,
``bytes``, ``latency`` (with a unit; the first latency variable of highest priority wins:
total time before upstream time), ``user_agent``. Every other variable, known or not, is kept
under its own name in ``extra`` (values ``-`` and empty are left out).

Conversions (both engines): ``endpoint`` is the target without ``scheme://host`` and without
the query; ``bytes`` ``-`` is 0; latency ``-``/``-1``/non-numeric is null, and of a list of
upstream times (``0.004, 0.002``) the first counts. Escapes the server wrote (nginx ``\\x22``,
Apache ``\\"``, CloudFront ``%20``, IIS ``+``) are kept as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.log_format_presets import PRESETS


def level_for_status(status: int) -> str:
    """Access logs carry no level: 5xx is ERROR, 4xx WARN, anything else INFO."""
    if status >= 500:
        return "ERROR"
    if status >= 400:
        return "WARN"
    return "INFO"


#: Kafka header carrying a custom format string (``format`` is then ``custom``); the ``format``
#: header itself (pipeline.schemas.HEADER_FORMAT) may also name any preset.
HEADER_LOG_FORMAT = "log_format"
QUOTED = r'((?:[^"\\]|\\.)*)'
#: a quoted request line: method, target (may hold spaces), optional protocol
REQUEST = r'([A-Za-z]+) ((?:[^"\\]|\\.)*?)(?: ([A-Za-z]+/[0-9.]+))?'
_REGEX = {
    "ip": r"([^ \t]+)",
    "int": r"([0-9]+|-)",
    "status": r"([0-9]{3})",
    "num": r"(-|-?[0-9.]+(?:(?:, | : )(?:[0-9.]+|-))*)",
    "clf": r"([0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4})",
    "iso": r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(?:Z|[+-][0-9]{2}:?[0-9]{2})?)",
    "haproxy": r"([0-9]{2}/[A-Za-z]{3}/[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3})",
    "msec": r"([0-9]+\.[0-9]+)",
    "date": r"([0-9]{4}-[0-9]{2}-[0-9]{2})",
    "time": r"([0-9]{2}:[0-9]{2}:[0-9]{2})",
    "method": r"([A-Za-z]+)",
}
# Latency units (ms per unit) and priority (lower wins).
_S, _MS, _US = 1000.0, 1.0, 0.001


@dataclass(frozen=True)
class Var:
    """What a variable means: role, regex kind, and for latency its unit and priority."""

    role: str | None = None      # None: kept in extra
    kind: str = "text"            # key of _REGEX, or "text" (quoted / up to the next literal)
    unit: float = 1.0
    priority: int = 9


_TS = {"clf": Var("ts", "clf"), "iso": Var("ts", "iso"), "msec": Var("ts", "msec"),
       "haproxy": Var("ts", "haproxy")}
NGINX_VARIABLES: dict[str, Var] = {
    "remote_addr": Var("client_ip", "ip"), "binary_remote_addr": Var(None, "ip"),
    "time_local": _TS["clf"], "time_iso8601": _TS["iso"], "msec": _TS["msec"],
    "haproxy_time": _TS["haproxy"],
    "request": Var("request"), "request_method": Var("method", "method"),
    "request_uri": Var("path"), "uri": Var("path"), "document_uri": Var("path"),
    "args": Var("query"), "query_string": Var("query"), "server_protocol": Var("protocol"),
    "status": Var("status", "status"),
    "body_bytes_sent": Var("bytes", "int"), "bytes_sent": Var("bytes", "int", priority=5),
    "request_time": Var("latency", "num", _S, 0),
    "upstream_response_time": Var("latency", "num", _S, 5),
    "upstream_connect_time": Var(None, "num"), "upstream_header_time": Var(None, "num"),
    "http_user_agent": Var("user_agent"),
    # HAProxy httplog fields (milliseconds) and ALB fields (seconds), in nginx syntax
    "haproxy_Ta": Var("latency", "num", _MS, 0),
    "TR": Var(None, "num"), "Tw": Var(None, "num"), "Tc": Var(None, "num"),
    "Tr": Var(None, "num"),
    "alb_target_processing_time": Var("latency", "num", _S, 0),
    "request_processing_time": Var(None, "num"), "response_processing_time": Var(None, "num"),
}
APACHE_DIRECTIVES: dict[str, Var] = {
    "h": Var("client_ip", "ip"), "a": Var("client_ip", "ip"), "t": _TS["clf"],
    "r": Var("request"), "m": Var("method", "method"), "U": Var("path"), "q": Var("query"),
    "H": Var("protocol"), "s": Var("status", "status"),
    "b": Var("bytes", "int"), "B": Var("bytes", "int"), "O": Var("bytes", "int", priority=5),
    "I": Var(None, "int"), "S": Var(None, "int"), "p": Var(None, "int"),
    "D": Var("latency", "int", _US, 0), "T": Var("latency", "int", _S, 1),
    "{ms}T": Var("latency", "int", _MS, 0), "{us}T": Var("latency", "int", _US, 0),
    "{s}T": Var("latency", "int", _S, 1), "{User-Agent}i": Var("user_agent"),
}
_APACHE_NAMES = {"h": "remote_host", "a": "remote_addr", "l": "remote_logname",
                 "u": "remote_user", "v": "server_name", "V": "server_name", "p": "port",
                 "O": "bytes_sent", "I": "bytes_received", "S": "bytes_transferred",
                 "X": "connection_status", "k": "keepalive", "P": "pid", "f": "filename",
                 "L": "log_id", "R": "handler", "e": "env"}
W3C_FIELDS: dict[str, Var] = {
    "date": Var("date", "date"), "time": Var("time", "time"), "c-ip": Var("client_ip", "ip"),
    "cs-method": Var("method", "method"), "cs-uri-stem": Var("path"),
    "cs-uri-query": Var("query"), "sc-status": Var("status", "status"),
    "sc-bytes": Var("bytes", "int"), "cs(User-Agent)": Var("user_agent"),
    "cs-version": Var("protocol"), "cs-protocol-version": Var("protocol"),
}


@dataclass(frozen=True)
class Group:
    """Regex group ``index`` (1-based) holds variable ``name`` in role ``var.role``."""

    index: int
    name: str
    var: Var


@dataclass(frozen=True)
class CompiledFormat:
    name: str
    syntax: str
    source: str
    regex: str
    groups: tuple[Group, ...]
    _compiled: re.Pattern = field(repr=False, compare=False, default=None)  # type: ignore
    _roles: dict[str, Group] = field(repr=False, compare=False, default_factory=dict)
    _extra: list[tuple[str, int]] = field(repr=False, compare=False, default_factory=list)

    def __post_init__(self) -> None:
        for g in sorted(self.groups, key=lambda g: (g.var.priority, g.index), reverse=True):
            if g.var.role is not None:
                self._roles[g.var.role] = g  # the lowest priority number, then the first
        self._extra.extend((g.name, g.index) for g in self.extras)

    def role(self, role: str) -> Group | None:
        """The group of ``role`` (of several: the lowest priority number, then the first)."""
        return self._roles.get(role)

    @property
    def extras(self) -> tuple[Group, ...]:
        """Groups kept in ``extra``: unmapped ones, and a second latency/bytes/client
        variable (``$upstream_response_time`` next to ``$request_time``)."""
        return tuple(g for g in self.groups if g.var.role is None or (
            g.var.role in ("latency", "bytes", "client_ip") and g != self.role(g.var.role)))

    @property
    def ts_kind(self) -> str:
        g = self.role("ts")
        return g.var.kind if g else ("w3c" if self.role("date") else "none")


def _lit(text: str) -> str:
    """Regex for literal text, escaped the same way for Python and Java."""
    out = []
    for ch in text:
        if ch in "\\.^$|?*+()[]{}":
            out.append("\\" + ch)
        elif ch == "\t":
            out.append(r"\t")
        else:
            out.append(ch)
    return "".join(out)


def _build(name: str, syntax: str, source: str, tokens: list[tuple[str, Any]],
           prefix: str = "") -> CompiledFormat:
    """tokens: ("lit", text) or ("var", (name, Var)) -> the compiled format."""
    parts, groups = ["^" + prefix], []
    for i, (kind, value) in enumerate(tokens):
        if kind == "lit":
            parts.append(_lit(value))
            continue
        vname, var = value
        before = tokens[i - 1][1] if i and tokens[i - 1][0] == "lit" else ""
        after = tokens[i + 1][1] if i + 1 < len(tokens) and tokens[i + 1][0] == "lit" else ""
        quoted = before.endswith('"') and after.startswith('"')
        if var.role == "request":
            regex = REQUEST if quoted else r"([A-Za-z]+) ([^ ]+)(?: ([A-Za-z]+/[0-9.]+))?"
            parts.append(regex)
            for role in ("method", "target", "protocol"):
                groups.append(Group(len(groups) + 1, role, Var(role)))
            continue
        if var.kind != "text":
            regex = _REGEX[var.kind]
        elif quoted:
            regex = QUOTED
        elif after:
            regex = "([^" + _lit(after[0]).replace("]", "\\]") + "]*)"
        else:
            regex = "(.*?)"
        parts.append(regex)
        groups.append(Group(len(groups) + 1, vname, var))
    regex = "".join(parts) + r"[ \t]*$"
    fmt = CompiledFormat(name, syntax, source, regex, tuple(groups), re.compile(regex))
    _check(fmt)
    return fmt


def _check(fmt: CompiledFormat) -> None:
    if fmt._compiled.groups != len(fmt.groups):  # pragma: no cover - compiler bug guard
        raise AssertionError(f"{fmt.name}: {fmt._compiled.groups} groups != {len(fmt.groups)}")
    if fmt.role("status") is None:
        raise ValueError(f"log format {fmt.name!r} has no status ($status / %>s / sc-status)")
    if fmt.ts_kind == "none":
        raise ValueError(f"log format {fmt.name!r} has no time ($time_local / %t / date time)")
    if fmt.role("path") is None and fmt.role("target") is None:
        raise ValueError(f"log format {fmt.name!r} has no request ($request / %r / $uri)")


_NGINX_VAR = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def compile_nginx(fmt: str, name: str = "custom", prefix: str = "") -> CompiledFormat:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    for m in _NGINX_VAR.finditer(fmt):
        if m.start() > pos:
            tokens.append(("lit", fmt[pos:m.start()]))
        vname = m.group(1) or m.group(2)
        tokens.append(("var", (vname, NGINX_VARIABLES.get(vname, Var()))))
        pos = m.end()
    if pos < len(fmt):
        tokens.append(("lit", fmt[pos:]))
    return _build(name, "nginx", fmt, _merge_lits(tokens), prefix)


_APACHE_DIR = re.compile(r"%(?:[<>]|!?[0-9,]+)*(\{[^}]*\})?([a-zA-Z%])")


def compile_apache(fmt: str, name: str = "custom", prefix: str = "") -> CompiledFormat:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    for m in _APACHE_DIR.finditer(fmt):
        if m.start() > pos:
            tokens.append(("lit", fmt[pos:m.start()]))
        arg, letter = m.group(1) or "", m.group(2)
        pos = m.end()
        if letter == "%":
            tokens.append(("lit", "%"))
            continue
        key = arg + letter
        var = APACHE_DIRECTIVES.get(key) or (APACHE_DIRECTIVES.get(letter) if not arg else None)
        if letter == "t" and arg:
            var = None  # a custom strftime: kept as text
        if key == "t":  # %t writes its own brackets
            tokens += [("lit", "["), ("var", ("time_local", _TS["clf"])), ("lit", "]")]
            continue
        if arg and letter in "ioCne":
            vname = {"i": "http_", "o": "sent_http_", "C": "cookie_", "n": "note_",
                     "e": "env_"}[letter] + arg[1:-1].lower().replace("-", "_")
        else:
            vname = _APACHE_NAMES.get(letter, f"%{arg}{letter}")
        tokens.append(("var", (vname, var or Var())))
    if pos < len(fmt):
        tokens.append(("lit", fmt[pos:]))
    return _build(name, "apache", fmt, _merge_lits(tokens), prefix)


def compile_w3c(fields: str, name: str = "custom", sep: str = " ",
                time_taken: str = "ms") -> CompiledFormat:
    """``#Fields: date time c-ip ...`` (or just the names) with ``sep`` between columns."""
    names = fields.removeprefix("#Fields:").split()
    unit = {"s": _S, "ms": _MS, "us": _US}[time_taken]
    tokens: list[tuple[str, Any]] = []
    for i, fname in enumerate(names):
        if i:
            tokens.append(("lit", sep))
        var = W3C_FIELDS.get(fname) or (Var("latency", "num", unit, 0)
                                        if fname == "time-taken" else Var())
        tokens.append(("var", (fname, var)))
    return _build(name, "w3c", fields, tokens)


def _merge_lits(tokens: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for t in tokens:
        if t[0] == "lit" and out and out[-1][0] == "lit":
            out[-1] = ("lit", out[-1][1] + t[1])
        else:
            out.append(t)
    return out


def compile_format(text: str, name: str = "custom") -> CompiledFormat:
    """A preset name or a format string: ``$var`` means nginx, ``%x`` Apache,
    ``#Fields:`` W3C. Raises ValueError naming what is wrong."""
    text = text.strip()
    if text in PRESETS:
        p = PRESETS[text]
        if p["syntax"] == "w3c":
            return compile_w3c(p["format"], text, p.get("sep", " "), p.get("time_taken", "ms"))
        compiler = compile_nginx if p["syntax"] == "nginx" else compile_apache
        return compiler(p["format"], text, p.get("prefix", ""))
    if text.startswith("#Fields:"):
        return compile_w3c(text, name)
    if "$" in text:
        return compile_nginx(text, name)
    if "%" in text:
        return compile_apache(text, name)
    raise ValueError(f"{text!r} is neither a preset ({', '.join(PRESETS)}) nor an nginx "
                     "($var) / Apache (%x) / W3C (#Fields:) format string")


_CACHE: dict[str, CompiledFormat] = {}


def get_format(text: str) -> CompiledFormat:
    """:func:`compile_format`, memoised (a format is compiled once per process)."""
    if text not in _CACHE:
        _CACHE[text] = compile_format(text, text if text in PRESETS else "custom")
    return _CACHE[text]


def resolve_name(text: str) -> str | None:
    """The preset ``text`` names or compiles to (same regex), else None (a custom format)."""
    text = text.strip()
    if text in PRESETS:
        return text
    regex = compile_format(text).regex
    return next((n for n, f in presets().items() if f.regex == regex), None)


#: Kafka header carrying the compiled regex / the group spec of a ``custom`` format.
HEADER_LOG_REGEX = "log_regex"
HEADER_LOG_GROUPS = "log_groups"
SPEC_ROLES = ("ts", "date", "time", "method", "target", "path", "query", "protocol", "status",
              "bytes", "latency", "client_ip", "user_agent")


def group_spec(fmt: CompiledFormat) -> str:
    """The group mapping as ``role=index;...`` (Spark reads it with ``str_to_map``), so a
    custom format travels with its lines and the processor needs no configuration."""
    pairs = [(r, str(fmt.role(r).index)) for r in SPEC_ROLES if fmt.role(r)]
    lat = fmt.role("latency")
    pairs += [("ts_kind", fmt.ts_kind), ("latency_unit", repr(lat.var.unit) if lat else "1.0"),
              ("extra_names", ",".join(g.name for g in fmt.extras)),
              ("extra_idx", ",".join(str(g.index) for g in fmt.extras))]
    for key, value in pairs:
        if any(c in value for c in ";="):  # pragma: no cover - names are [A-Za-z0-9_()-]
            raise ValueError(f"log format {fmt.name}: {key} {value!r} cannot travel in a header")
    return ";".join(f"{k}={v}" for k, v in pairs)


def presets() -> dict[str, CompiledFormat]:
    return {name: get_format(name) for name in PRESETS}


# ---- Python parse (the Spark parser in pipeline.transforms.parsing must agree) ----

_HOST = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*")
_FIRST_NUM = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?")
SCHEME_HOST_RE = _HOST.pattern
FIRST_NUMBER_RE = _FIRST_NUM.pattern
SPARK_HAPROXY_TIME = "dd/MMM/yyyy:HH:mm:ss.SSS Z"


def latency_ms(text: str | None, unit: float) -> float | None:
    """``-``, ``-1`` and non-numbers are no latency; a list counts its first value."""
    m = _FIRST_NUM.match(text or "")
    if m is None or m.group(0).startswith("-"):
        return None
    return float(m.group(0)) * unit


def _ts_ms(fmt: CompiledFormat, m: re.Match) -> int | None:
    kind = fmt.ts_kind
    try:
        if kind == "w3c":
            text = f"{m.group(fmt.role('date').index)}T{m.group(fmt.role('time').index)}+00:00"
            return int(datetime.fromisoformat(text).timestamp() * 1000)
        text = m.group(fmt.role("ts").index)
        if kind == "clf":
            return int(datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp() * 1000)
        if kind == "haproxy":
            when = datetime.strptime(text + " +0000", "%d/%b/%Y:%H:%M:%S.%f %z")
            return int(when.timestamp() * 1000)
        if kind == "msec":
            return round(float(text) * 1000)
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    except ValueError:
        return None


def parse(fmt: CompiledFormat, line: bytes | str, *, source: str | None = None,
          event_id: str | None = None) -> tuple[dict[str, Any], dict[str, str]] | None:
    """(event with exactly the EVENT_FIELDS, extra variables) or None when the line does
    not match or its time is invalid (the caller quarantines it)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    m = fmt._compiled.match(line.rstrip("\r\n"))
    if m is None:
        return None
    ts = _ts_ms(fmt, m)
    if ts is None:
        return None

    roles = fmt._roles

    def val(role: str) -> str | None:
        g = roles.get(role)
        return m.group(g.index) if g else None

    target = val("target") if fmt.role("target") else val("path")
    target = target or ""
    query = val("query")
    method = val("method") or ""
    protocol = val("protocol") or ""
    endpoint = _HOST.sub("", target).split("?", 1)[0]
    status = int(val("status"))
    size = val("bytes")
    lat = fmt.role("latency")
    if fmt.role("target"):
        message = f"{method} {target} {protocol}" if protocol else f"{method} {target}"
    else:
        full = f"{target}?{query}" if query and query != "-" else target
        message = f"{method} {full} {protocol}" if protocol else f"{method} {full}"
    event = {
        "event_id": event_id, "ts": ts, "level": level_for_status(status), "source": source,
        "method": method, "endpoint": endpoint, "status": status,
        "latency_ms": latency_ms(m.group(lat.index), lat.var.unit) if lat else None,
        "bytes": int(size) if size and size != "-" else 0,
        "client_ip": val("client_ip"), "user_agent": val("user_agent"), "message": message,
    }
    extra = {}
    for name, index in fmt._extra:
        value = m.group(index)
        if value not in ("-", "", None):
            extra[name] = value
    return event, extra

