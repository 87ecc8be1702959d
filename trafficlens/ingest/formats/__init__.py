"""Log formats: how each kind of access log line becomes the columns of EVENT_SCHEMA.

Every parser is a polars expression pipeline over a frame of `line, line_no`; a line that fits no
format becomes a reject with its reason. Three families:

- regex formats (combined, common, vhost_*, ALB, ELB, S3, and custom nginx/Apache format strings):
  a fast regex first, then an escape-tolerant one for the few lines the fast one misses;
- W3C extended (IIS, CloudFront): `#Fields:` directives say the columns, and may change mid-file;
- JSON lines (Caddy, Traefik, nginx `escape=json`, or any JSON with a field mapping).

A format is defined in the module of its family or vendor (`ncsa`, `aws`, `w3c`, `jsonlines`;
`custom` compiles the user's own format strings; `common` holds what they all share) and registered
here, which is what detection, `--format` and the fallback for mixed logs read.
"""

from __future__ import annotations

from trafficlens.ingest.formats import aws, jsonlines, ncsa, w3c
from trafficlens.ingest.formats.common import Format, JsonFormat, RegexFormat, W3CFormat

# Line formats, in the order detection tries them (the first of equals wins) and in which lines
# that miss their file's format try the others.
REGEX_FORMATS: dict[str, RegexFormat] = {
    "vhost_combined": ncsa.VHOST_COMBINED,
    "vhost_combined_noport": ncsa.VHOST_COMBINED_NOPORT,
    # Before combined, which would read these lines too, losing the duration.
    "traefik_clf": ncsa.TRAEFIK_CLF,
    "combined": ncsa.COMBINED,
    "alb": aws.ALB,
    "elb": aws.ELB,
    "s3": aws.S3,
    "haproxy": ncsa.HAPROXY,
    "zoraxy": ncsa.ZORAXY,
}
W3C_FORMATS: dict[str, W3CFormat] = {"w3c": w3c.W3C, "cloudfront": aws.CLOUDFRONT}
JSON_FORMATS: dict[str, JsonFormat] = {
    "caddy": jsonlines.CADDY,
    "traefik": jsonlines.TRAEFIK,
    "nginx_json": jsonlines.NGINX_JSON,
    "envoy": jsonlines.ENVOY,
}

# Names a user may give with --format, mapped to the parser that reads them.
FORMAT_ALIASES = {
    "combined": "combined",
    "common": "combined",
    "clf": "combined",
    "ncsa": "combined",
    "vhost_combined": "vhost_combined",
    "vhost_common": "vhost_combined",
    "alb": "alb",
    "elb": "elb",
    "s3": "s3",
    "haproxy": "haproxy",
    "w3c": "w3c",
    "iis": "w3c",
    "cloudfront": "cloudfront",
    "caddy": "caddy",
    "traefik": "traefik",
    "traefik_clf": "traefik_clf",
    "traefik_json": "traefik",
    "nginx_json": "nginx_json",
    "envoy": "envoy",
    "zoraxy": "zoraxy",
    "json": "json",
}
# The names --format accepts, as its help and error messages list them.
FORMAT_NAMES: tuple[str, ...] = tuple(sorted(FORMAT_ALIASES))

__all__ = [
    "FORMAT_ALIASES",
    "FORMAT_NAMES",
    "Format",
    "JSON_FORMATS",
    "JsonFormat",
    "REGEX_FORMATS",
    "RegexFormat",
    "W3CFormat",
    "W3C_FORMATS",
]
