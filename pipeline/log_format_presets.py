"""What servers write by default, as data: preset name -> (syntax, format string, notes).

A preset is never code: :func:`pipeline.log_formats.compile_format` turns the string into the
regex both Python and Spark use. Syntaxes: ``nginx`` (``log_format``), ``apache``
(``LogFormat``), ``w3c`` (the ``#Fields:`` list of IIS / CloudFront; ``sep`` is the column
separator and ``time_taken`` the unit of ``time-taken``). HAProxy and ALB have no format
language Lakewatch reads, so they are written in nginx syntax with their own field names
(see ``pipeline.log_formats.NGINX_VARIABLES``); ``prefix`` is an optional regex for a syslog
header in front of the line.
"""

from __future__ import annotations

from typing import Any

NGINX_COMBINED = ('$remote_addr - $remote_user [$time_local] "$request" $status '
                  '$body_bytes_sent "$http_referer" "$http_user_agent"')

PRESETS: dict[str, dict[str, Any]] = {
    "nginx_combined": {
        "syntax": "nginx", "format": NGINX_COMBINED,
        "notes": "nginx's predefined `combined` log_format (no latency)",
    },
    "nginx_timed": {
        "syntax": "nginx",
        "format": NGINX_COMBINED + " $request_time $upstream_response_time",
        "notes": "combined + $request_time (s) + $upstream_response_time (s)",
    },
    "apache_common": {
        "syntax": "apache", "format": '%h %l %u %t "%r" %>s %b',
        "notes": "Apache `common` (NCSA)",
    },
    "apache_combined": {
        "syntax": "apache", "format": '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"',
        "notes": "Apache `combined`",
    },
    "apache_vhost_combined": {
        "syntax": "apache",
        "format": '%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"',
        "notes": "Debian's `vhost_combined` (apache2.conf)",
    },
    "haproxy_http": {
        "syntax": "nginx",
        # option httplog: %ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
        #                 %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r  (no header captures)
        "format": ("$remote_addr:$remote_port [$haproxy_time] $frontend_name "
                   "$backend_name/$server_name $TR/$Tw/$Tc/$Tr/$haproxy_Ta $status "
                   "$body_bytes_sent $captured_request_cookie $captured_response_cookie "
                   "$termination_state $actconn/$feconn/$beconn/$srv_conn/$retries "
                   '$srv_queue/$backend_queue "$request"'),
        "prefix": r"(?:[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ [^ ]+: )?",
        "notes": "HAProxy `option httplog`, optional syslog header; %Ta (ms) is the latency; "
                 "%tr has no zone and is read as UTC",
    },
    "aws_alb": {
        "syntax": "nginx",
        "format": ('$alb_type $time_iso8601 $elb $remote_addr:$remote_port $target '
                   '$request_processing_time $alb_target_processing_time '
                   '$response_processing_time $status $target_status_code $received_bytes '
                   '$body_bytes_sent "$request" "$http_user_agent" $ssl_cipher $ssl_protocol '
                   '$target_group_arn "$trace_id" "$domain_name" "$chosen_cert_arn" '
                   '$matched_rule_priority $request_creation_time "$actions_executed" '
                   '"$redirect_url" "$error_reason" "$target_port_list" '
                   '"$target_status_code_list" "$classification" "$classification_reason"'
                   '$alb_rest'),
        "notes": "AWS Application Load Balancer access log; target_processing_time (s) "
                 "is the latency (-1 when no target answered)",
    },
    "cloudfront": {
        "syntax": "w3c", "sep": "\t", "time_taken": "s",
        "format": ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
                   "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) "
                   "x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes "
                   "time-taken x-forwarded-for ssl-protocol ssl-cipher "
                   "x-edge-response-result-type cs-protocol-version fle-status "
                   "fle-encrypted-fields c-port time-to-first-byte "
                   "x-edge-detailed-result-type sc-content-type sc-content-len "
                   "sc-range-start sc-range-end"),
        "notes": "CloudFront standard log (tab-separated, UTC; user agent stays URL-encoded)",
    },
    "w3c_iis": {
        "syntax": "w3c", "sep": " ", "time_taken": "ms",
        "format": ("date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
                   "c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status "
                   "time-taken"),
        "notes": "IIS W3C extended, default fields (UTC; '+' stands for spaces in the UA)",
    },
}
