"""The generator's fixed vocabulary: services, endpoints, clients, user agents, messages.

Plain data, kept apart from the sampling code so the shape of the simulated site can be read
(and changed) in one place. Per endpoint: method, median latency and log-normal sigma,
median response size and the probabilities of 3xx / 4xx / 5xx answers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    service: str
    method: str
    path: str
    latency_median_ms: float
    latency_sigma: float
    bytes_median: int
    p3xx: float
    p4xx: float
    p5xx: float


def _ep(service: str, method: str, path: str, lat: float, sigma: float, size: int,
        p3: float = 0.0, p4: float = 0.01, p5: float = 0.002) -> Endpoint:
    return Endpoint(service, method, path, lat, sigma, size, p3, p4, p5)


#: Service names in the order sources are assigned to them (source i runs SERVICES[i % n]).
SERVICES: tuple[str, ...] = ("web", "api", "auth", "search", "checkout", "static")

#: Per service, endpoints in popularity order (rank 1 first; Zipf weights within a service).
ENDPOINTS: tuple[Endpoint, ...] = (
    _ep("web", "GET", "/", 35, 0.45, 18_000, p3=0.02),
    _ep("web", "GET", "/products", 60, 0.5, 42_000, p3=0.01),
    _ep("web", "GET", "/product/detail", 55, 0.5, 36_000, p4=0.03),
    _ep("web", "GET", "/cart", 45, 0.5, 12_000),
    _ep("web", "GET", "/account", 50, 0.5, 9_000, p3=0.05, p4=0.02),
    _ep("web", "GET", "/about", 20, 0.4, 7_500),
    _ep("web", "GET", "/healthz", 2, 0.3, 2),
    _ep("api", "GET", "/api/v1/products", 40, 0.6, 24_000),
    _ep("api", "GET", "/api/v1/recommendations", 120, 0.7, 8_000, p5=0.004),
    _ep("api", "GET", "/api/v1/cart", 25, 0.5, 2_500),
    _ep("api", "POST", "/api/v1/cart", 45, 0.5, 1_200, p4=0.02),
    _ep("api", "GET", "/api/v1/reviews", 70, 0.6, 15_000),
    _ep("api", "GET", "/api/v1/inventory", 30, 0.5, 900, p5=0.003),
    _ep("auth", "POST", "/auth/login", 180, 0.35, 800, p3=0.10, p4=0.08),
    _ep("auth", "GET", "/auth/session", 8, 0.4, 350, p4=0.03),
    _ep("auth", "POST", "/auth/refresh", 25, 0.4, 600, p4=0.02),
    _ep("auth", "POST", "/auth/logout", 15, 0.4, 200, p3=0.3),
    _ep("search", "GET", "/search/query", 95, 0.65, 28_000, p4=0.015),
    _ep("search", "GET", "/search/suggest", 18, 0.5, 1_500),
    _ep("search", "GET", "/search/facets", 60, 0.6, 6_000),
    _ep("checkout", "POST", "/checkout/start", 150, 0.5, 2_000, p4=0.02, p5=0.004),
    _ep("checkout", "POST", "/checkout/payment", 420, 0.45, 1_100, p4=0.04, p5=0.006),
    _ep("checkout", "GET", "/checkout/status", 30, 0.4, 700),
    _ep("checkout", "POST", "/checkout/confirm", 260, 0.45, 1_600, p4=0.02, p5=0.005),
    _ep("static", "GET", "/static/app.js", 4, 0.6, 310_000, p3=0.35, p4=0.001, p5=0.0005),
    _ep("static", "GET", "/static/app.css", 3, 0.6, 58_000, p3=0.35, p4=0.001, p5=0.0005),
    _ep("static", "GET", "/static/logo.png", 3, 0.6, 14_000, p3=0.4, p4=0.001, p5=0.0005),
    _ep("static", "GET", "/static/fonts/inter.woff2", 5, 0.6, 96_000, p3=0.5, p4=0.001,
        p5=0.0005),
    _ep("static", "GET", "/favicon.ico", 2, 0.5, 4_300, p3=0.3, p4=0.02, p5=0.0005),
)

#: Zipf exponent of endpoint popularity within a service and of source traffic shares.
ZIPF_S = 1.15

#: Paths a 404 scanner probes: none of them exists on the site.
SCAN_PATHS: tuple[str, ...] = (
    "/wp-login.php", "/wp-admin/setup-config.php", "/.env", "/.git/config", "/phpmyadmin/",
    "/admin/config.php", "/cgi-bin/test.cgi", "/backup.zip", "/db.sql", "/config.json",
    "/server-status", "/actuator/env", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/solr/admin/info/system", "/.aws/credentials", "/owa/auth/logon.aspx", "/boaform/admin",
    "/HNAP1/", "/console/", "/manager/html", "/xmlrpc.php", "/.DS_Store", "/id_rsa",
    "/api/v1/../../etc/passwd", "/shell.php", "/remote/login", "/jenkins/script", "/.svn/entries",
    "/wp-content/plugins/revslider/temp/update_extract/", "/index.php?s=/module/action/param1",
    "/setup.cgi", "/login.action", "/druid/index.html", "/telescope/requests", "/_ignition/health",
)
SCANNER_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 zgrab/0.x",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
)

#: (user agent, weight)
USER_AGENTS: tuple[tuple[str, float], ...] = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 34),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", 14),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 16),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", 12),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0", 6),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 4),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 2),
    ("curl/8.5.0", 2),
    ("python-requests/2.32.3", 2),
    ("okhttp/4.12.0", 2),
)

# Status codes within a class, with weights.
STATUS_2XX = ((200, 0.96), (201, 0.03), (204, 0.01))
STATUS_3XX = ((304, 0.7), (302, 0.25), (301, 0.05))
STATUS_4XX = ((404, 0.4), (400, 0.2), (401, 0.15), (403, 0.1), (429, 0.15))
STATUS_5XX = ((500, 0.5), (502, 0.2), (503, 0.2), (504, 0.1))

#: Share of non-error requests logged at DEBUG instead of INFO.
DEBUG_SHARE = 0.06

#: Error reasons per 5xx status; the message picks one at random.
ERROR_REASONS: dict[int, tuple[str, ...]] = {
    500: ("unhandled exception in request handler", "database query failed: deadlock detected",
          "NullPointerException in OrderService.total"),
    502: ("bad gateway: upstream closed connection", "connection reset by peer"),
    503: ("service unavailable: connection pool exhausted", "circuit open for inventory-db"),
    504: ("upstream timed out after 30000 ms", "gateway timeout waiting for payment-provider"),
}
N_REASONS = 3

WARN_MESSAGES: dict[int, str] = {
    400: "invalid request parameters for {method} {path}",
    401: "authentication required for {path}",
    403: "access denied to {path}",
    404: "no route for {method} {path}",
    429: "rate limit exceeded on {path}",
}
INFO_MESSAGE = "{method} {path} completed with {status}"
DEBUG_MESSAGE = "{method} {path} served from cache with {status}"
ERROR_MESSAGE = "{method} {path} failed with {status}: {reason}"

#: Templates that never occur in normal traffic; a new_pattern scenario uses one of them.
NEW_PATTERNS: tuple[str, ...] = (
    "circuit breaker OPEN for dependency recommendations-svc after 5 consecutive failures",
    "TLS handshake with upstream payments-gw failed: certificate has expired",
    "cache cluster node redis-3 evicted 4096 keys under memory pressure",
    "feature flag new-checkout-flow evaluated with stale config version",
    "kafka consumer group order-events rebalancing: partitions revoked",
    "GC pause of 1840 ms exceeded threshold in worker pool",
)
