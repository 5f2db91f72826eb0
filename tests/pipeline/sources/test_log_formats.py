"""Format strings and presets (pipeline.log_formats): one test per preset on sample lines
written from each format's documentation, awkward ones included, with exact field values;
and one run of the same lines through the real Spark parser, which must agree exactly."""

from __future__ import annotations

import re

import pytest

from pipeline import access_log, log_formats
from pipeline.log_format_presets import PRESETS

TS_2000 = 971211336000  # 10/Oct/2000:13:55:36 -0700
UA_QUOTED = r'Mozilla/5.0 (X11; Linux x86_64) \"quoted\" Gecko'


def one(fmt: str, line: str) -> tuple[dict, dict]:
    parsed = log_formats.parse(log_formats.get_format(fmt), line, source="s")
    assert parsed is not None, f"{fmt} did not match: {line!r}"
    return parsed


def fields(event: dict, *names: str) -> tuple:
    return tuple(event[n] for n in names)


F = ("client_ip", "method", "endpoint", "status", "bytes", "latency_ms", "user_agent")

# (preset, line, expected F values, expected ts ms or None to skip, expected extra subset)
SAMPLES: list[tuple[str, str, tuple, int | None, dict]] = [
    ("nginx_combined",
     '2001:db8:85a3::8a2e:370:7334 - - [10/Oct/2000:13:55:36 -0700] "GET /caf\\xC3\\xA9?q=1 '
     'HTTP/2.0" 200 512 "https://example.com/" "Mozilla/5.0 \\x22quoted\\x22"',
     ("2001:db8:85a3::8a2e:370:7334", "GET", "/caf\\xC3\\xA9", 200, 512, None,
      "Mozilla/5.0 \\x22quoted\\x22"), TS_2000, {"http_referer": "https://example.com/"}),
    ("nginx_combined",
     '203.0.113.5 - alice [10/Oct/2000:13:55:36 -0700] "GET /search results/пример HTTP/1.1" '
     f'404 - "-" "{UA_QUOTED}"',
     ("203.0.113.5", "GET", "/search results/пример", 404, 0, None, UA_QUOTED), TS_2000,
     {"remote_user": "alice"}),
    ("nginx_timed",
     '192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "POST /api/cart HTTP/1.1" 502 157 "-" '
     '"curl/8.5.0" 0.250 0.100, 0.148',
     ("192.0.2.1", "POST", "/api/cart", 502, 157, 250.0, "curl/8.5.0"), TS_2000,
     {"upstream_response_time": "0.100, 0.148"}),
    ("nginx_timed",
     '::1 - - [10/Oct/2000:13:55:36 -0700] "GET /static/app.js HTTP/1.1" 304 0 "-" "-" '
     '0.000 -',
     ("::1", "GET", "/static/app.js", 304, 0, 0.0, "-"), TS_2000, {}),
    ("apache_common",
     '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',
     ("127.0.0.1", "GET", "/apache_pb.gif", 200, 2326, None, None), TS_2000,
     {"remote_user": "frank"}),
    ("apache_common",
     '::1 - - [10/Oct/2000:13:55:36 -0700] "OPTIONS * HTTP/1.0" 200 -',
     ("::1", "OPTIONS", "*", 200, 0, None, None), TS_2000, {}),
    ("apache_combined",
     '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
     '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"',
     ("127.0.0.1", "GET", "/apache_pb.gif", 200, 2326, None,
      "Mozilla/4.08 [en] (Win98; I ;Nav)"), TS_2000,
     {"http_referer": "http://www.example.com/start.html"}),
    ("apache_combined",
     '2001:db8::7 - - [10/Oct/2000:13:55:36 -0700] "GET /über uns HTTP/1.1" 500 - "-" '
     f'"{UA_QUOTED}"',
     ("2001:db8::7", "GET", "/über uns", 500, 0, None, UA_QUOTED), TS_2000, {}),
    ("apache_vhost_combined",
     'www.example.com:443 192.0.2.7 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html '
     'HTTP/1.1" 200 5120 "-" "curl/8.5.0"',
     ("192.0.2.7", "GET", "/index.html", 200, 5120, None, "curl/8.5.0"), TS_2000,
     {"server_name": "www.example.com", "port": "443"}),
    ("apache_vhost_combined",
     'www.example.org:8080 2001:db8::42 - - [10/Oct/2000:13:55:36 -0700] "GET /a b/ä HTTP/1.1" '
     f'301 - "https://x.example/?a=\\"b\\"" "{UA_QUOTED}"',
     ("2001:db8::42", "GET", "/a b/ä", 301, 0, None, UA_QUOTED), TS_2000,
     {"server_name": "www.example.org", "port": "8080", "http_referer": 'https://x.example/?a=\\"b\\"'}),
    ("haproxy_http",
     'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] '
     'http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 '
     '"GET /index.html HTTP/1.1"',
     ("10.0.1.2", "GET", "/index.html", 200, 2750, 109.0, None), 1233922454655,
     {"frontend_name": "http-in", "backend_name": "static", "server_name": "srv1",
      "remote_port": "33317", "termination_state": "----"}),
    ("haproxy_http",
     '2001:db8::1:40000 [06/Feb/2009:12:14:14.655] fe~ be/<NOSRV> -1/-1/-1/-1/3 503 212 - - '
     'SC-- 0/0/0/0/0 0/0 "GET /a%20b HTTP/1.1"',
     ("2001:db8::1", "GET", "/a%20b", 503, 212, 3.0, None), 1233922454655,
     {"server_name": "<NOSRV>", "Tw": "-1"}),
    ("aws_alb",
     'http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 '
     '192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 '
     '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
     'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/'
     '73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 '
     '2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"',
     ("192.168.131.39", "GET", "/", 200, 366, 1.0, "curl/7.46.0"), 1530570180186,
     {"elb": "app/my-loadbalancer/50dc6c495c0c9188", "target": "10.0.0.1:80"}),
    ("aws_alb",
     'https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 '
     '2001:db8::5:2817 - -1 -1 -1 502 - 34 366 '
     '"GET https://www.example.com:443/a%20b?x=1 HTTP/1.1" "Mozilla/5.0 \\"q\\"" '
     'ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-58337262" "-" "-" 0 '
     '2018-07-02T22:22:48.364000Z "forward" "-" "-" "-" "-" "-" "-" TID_1234',
     ("2001:db8::5", "GET", "/a%20b", 502, 366, None, 'Mozilla/5.0 \\"q\\"'), 1530570180186,
     {"ssl_protocol": "TLSv1.2", "alb_rest": " TID_1234"}),
    ("cloudfront",
     "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t"
     "/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\t"
     "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net"
     "\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040"
     "\t0.001\tHit\ttext/html\t78\t-\t-",
     ("192.0.2.100", "GET", "/index.html", 200, 392, 1.0,
      "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)"), 1575493351000,
     {"x-edge-location": "LAX1", "cs(Host)": "d111111abcdef8.cloudfront.net"}),
    ("cloudfront",
     "2019-12-04\t21:02:31\tLAX1\t0\t2001:db8::9\tGET\td1.cloudfront.net\t/%D0%BF%D1%80\t404"
     "\thttps://ref.example/\t-\tq=a%20b\t-\tError\tid==\td1.cloudfront.net\thttps\t23\t0.250"
     "\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tError\tHTTP/1.1\t-\t-\t443\t0.249\tError\t-\t-\t-"
     "\t-",
     ("2001:db8::9", "GET", "/%D0%BF%D1%80", 404, 0, 250.0, "-"), 1575493351000,
     {"cs(Referer)": "https://ref.example/"}),
    ("w3c_iis",
     "2024-01-15 10:00:00 192.168.1.10 GET /default.htm - 80 - 203.0.113.9 "
     "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15",
     ("203.0.113.9", "GET", "/default.htm", 200, 0, 15.0,
      "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)"), 1705312800000,
     {"s-ip": "192.168.1.10", "s-port": "80"}),
    ("w3c_iis",
     "2024-01-15 10:00:01 fe80::1 GET /suche/straße q=a+b 443 bob 2001:db8::2 - "
     "https://example.com/ 404 0 2 1203",
     ("2001:db8::2", "GET", "/suche/straße", 404, 0, 1203.0, "-"), 1705312801000,
     {"cs-username": "bob"}),
]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_has_samples(preset):
    assert sum(1 for s in SAMPLES if s[0] == preset) >= 2


@pytest.mark.parametrize(("preset", "line", "expected", "ts", "extra"), SAMPLES,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SAMPLES)])
def test_preset_sample_parses_exactly(preset, line, expected, ts, extra):
    event, got_extra = one(preset, line)
    assert fields(event, *F) == expected
    assert event["ts"] == ts
    assert event["level"] == access_log.level_for_status(expected[3])
    assert set(event) == set(access_log.parse_line(line, preset))
    assert {k: got_extra.get(k) for k in extra} == extra
    assert "-" not in got_extra.values() and "" not in got_extra.values()


def test_unknown_variables_are_kept_by_name_and_latency_units_convert():
    nginx = log_formats.get_format(
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time '
        '$ssl_protocol "$http_x_forwarded_for" $upstream_response_time')
    event, extra = log_formats.parse(
        nginx, '10.0.0.1 [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 200 5 1.5 TLSv1.3 '
               '"198.51.100.1, 10.0.0.2" 1.2')
    assert (event["latency_ms"], extra) == (1500.0, {
        "ssl_protocol": "TLSv1.3", "http_x_forwarded_for": "198.51.100.1, 10.0.0.2",
        "upstream_response_time": "1.2"})
    apache_d = log_formats.get_format('%h %l %u %t "%r" %>s %b %D')
    line = '::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 10 1234'
    assert log_formats.parse(apache_d, line)[0]["latency_ms"] == pytest.approx(1.234)
    apache_t = log_formats.get_format('%h %l %u %t "%r" %>s %b %T "%{X-Request-Id}i"')
    event, extra = log_formats.parse(
        apache_t, '::1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 10 2 "abc"')
    assert (event["latency_ms"], extra) == (2000.0, {"http_x_request_id": "abc"})
    ms = log_formats.get_format('%a %t "%r" %s %B %{ms}T')
    assert log_formats.parse(
        ms, '::1 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 10 7')[0]["latency_ms"] == 7.0


def test_compiled_regex_uses_only_portable_syntax():
    """No named groups, lookbehind, possessive quantifiers or \\d-style classes: Java and
    Python must read every compiled pattern the same way."""
    for fmt in log_formats.presets().values():
        assert not re.search(r"\(\?P?<|\(\?<[=!]|[*+?]\+|\\[dswDSW]", fmt.regex), fmt.name


def test_bad_formats_and_lines_are_rejected_with_reasons():
    with pytest.raises(ValueError, match="no status"):
        log_formats.compile_format('$remote_addr [$time_local] "$request"')
    with pytest.raises(ValueError, match="neither a preset"):
        log_formats.compile_format("nginx-combined-typo")
    fmt = log_formats.get_format("nginx_combined")
    assert log_formats.parse(fmt, '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "-" 400 0 "-" "-"') \
        is None
    assert log_formats.parse(fmt, '1.2.3.4 - - [99/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" '
                                  '200 0 "-" "-"') is None


def test_format_string_equal_to_a_preset_resolves_to_it():
    timed = PRESETS["nginx_timed"]["format"]
    assert log_formats.resolve_name(timed) == "nginx_timed"
    assert log_formats.resolve_name("apache_common") == "apache_common"
    assert log_formats.resolve_name('%h %l %u %t "%r" %>s %b %D') is None


CUSTOM = [
    ('$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time '
     '$ssl_protocol "$http_x_forwarded_for" $upstream_response_time "$http_user_agent"',
     '2001:db8::3 [10/Oct/2000:13:55:36 -0700] "GET /a b/ü?x=1 HTTP/1.1" 200 5 1.5 TLSv1.3 '
     '"198.51.100.1, 10.0.0.2" 1.2 "UA \\"q\\""'),
    ('%h %l %u %t "%r" %>s %b %D "%{X-Request-Id}i"',
     '::1 - - [10/Oct/2000:13:55:36 -0700] "POST /api HTTP/1.1" 503 - 1234 "req-1"'),
    ('$msec $remote_addr "$request" $status $bytes_sent $upstream_response_time',
     '971211336.123 10.0.0.9 "GET / HTTP/1.1" 404 99 -'),
]


def test_shipper_labels_presets_by_name_and_ships_custom_formats_compiled():
    from pipeline.settings import ConfigError
    from pipeline.sources.shipper import format_label

    assert format_label("combined") == ("combined", [])
    assert format_label(PRESETS["apache_combined"]["format"]) == ("apache_combined", [])
    label, headers = format_label(CUSTOM[1][0])
    fmt = log_formats.compile_format(CUSTOM[1][0])
    assert label == "custom"
    assert dict(headers) == {"log_format": CUSTOM[1][0].encode(), "log_regex": fmt.regex.encode(),
                             "log_groups": log_formats.group_spec(fmt).encode()}
    with pytest.raises(ConfigError, match="neither a preset"):
        format_label("nginx-timed")


def test_ship_format_precedence_and_listing(tmp_path):
    import argparse

    from pipeline.commands import ship
    from pipeline.settings import ConfigError, load_settings

    parser = argparse.ArgumentParser()
    ship.configure_parser(parser)
    settings = load_settings(None, {"sources.log_format": "w3c_iis",
                                    "storage.data_dir": str(tmp_path)})
    assert ship.chosen_format(parser.parse_args(["--follow", "x"]), settings) == "w3c_iis"
    assert ship.chosen_format(parser.parse_args(["--format", "common"]), settings) == "common"
    args = parser.parse_args(["--log-format", "%h %t \"%r\" %>s %b %D"])
    assert ship.chosen_format(args, settings) == '%h %t "%r" %>s %b %D'
    with pytest.raises(ConfigError, match="not both"):
        ship.chosen_format(parser.parse_args(["--format", "json", "--log-format", "x"]),
                           settings)
    listing = ship.list_formats()
    assert all(name in listing for name in PRESETS)


def test_spark_parser_agrees_with_python_on_every_sample(spark):
    from datetime import UTC, datetime

    from pyspark.sql import functions as F

    from pipeline.transforms.parsing import parse_records, valid_logs

    now = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
    from pipeline.sources.shipper import format_label

    cases = [(preset, line) for preset, line, *_rest in SAMPLES] + CUSTOM
    rows = []
    for i, (fmt, line) in enumerate(cases):
        label, extra_headers = format_label(fmt)
        rows.append((line.encode(), "t", 0, i, now,
                     [("format", label.encode()), ("source", b"s"), *extra_headers]))
    frame = spark.createDataFrame(rows, "value binary, topic string, partition int, "
                                  "offset long, timestamp timestamp, "
                                  "headers array<struct<key:string,value:binary>>")
    parsed = parse_records(frame, max_message_bytes=10_000, max_past_s=10**10,
                           max_future_s=60, now=F.lit(now))
    got = {r.kafka_offset: r for r in parsed.select(
        "*", F.unix_millis("ts").alias("ts_ms")).collect()}
    assert valid_logs(parsed).count() == len(cases)
    for i, (fmt, line) in enumerate(cases):
        event, extra = one(fmt, line)
        row = got[i]
        assert row.reason is None, (fmt, row.reason)
        assert row.raw_format == (fmt if fmt in PRESETS else "custom")
        spark_event = {k: getattr(row, k) for k in event if k not in ("ts", "event_id")}
        assert spark_event == {k: v for k, v in event.items() if k not in ("ts", "event_id")}
        assert (row.ts_ms, dict(row.extra)) == (event["ts"], extra), fmt
