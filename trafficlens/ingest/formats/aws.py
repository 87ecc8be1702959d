"""Amazon's access logs: ALB, classic ELB, S3 server access, and CloudFront (W3C fields, tab-separated)."""

from __future__ import annotations

from trafficlens.ingest.formats.common import RegexFormat, W3CFormat, quoted


def _alb(escaped: bool) -> str:
    q = lambda n: quoted(n, escaped)  # noqa: E731
    return (
        r"^(?P<type>[a-z0-9]+) (?P<ts>[0-9T:.\-]+Z) (?P<elb>[^ ]+) "
        r"(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) (?P<backend>[^ ]+) "
        r"(?P<rt1>[-0-9.]+) (?P<rt2>[-0-9.]+) (?P<rt3>[-0-9.]+) "
        r"(?P<status>[0-9]{3}|-) (?P<target_status>[0-9]+|-) (?P<received_bytes>[0-9]+|-) (?P<bytes>[0-9]+|-) "
        + q("request")
        + " "
        + q("user_agent")
        + r" (?P<tls_cipher>[^ ]+) (?P<tls_protocol>[^ ]+)"
    )


def _elb(escaped: bool) -> str:
    q = lambda n: quoted(n, escaped)  # noqa: E731
    return (
        r"^(?P<ts>[0-9]{4}-[0-9T:.\-]+Z) (?P<elb>[^ ]+) "
        r"(?P<client_ip>[^ ]+):(?P<client_port>[0-9]+) (?P<backend>[^ ]+) "
        r"(?P<rt1>[-0-9.]+) (?P<rt2>[-0-9.]+) (?P<rt3>[-0-9.]+) "
        r"(?P<status>[0-9]{3}|-) (?P<backend_status>[0-9]+|-) (?P<received_bytes>[0-9]+|-) (?P<bytes>[0-9]+|-) "
        + q("request")
        + r"(?: "
        + q("user_agent")
        + r" (?P<tls_cipher>[^ ]+) (?P<tls_protocol>[^ ]+))?"
    )


def _s3(escaped: bool) -> str:
    q = lambda n: quoted(n, escaped)  # noqa: E731
    return (
        r"^(?P<bucket_owner>[^ ]+) (?P<bucket>[^ ]+) \[(?P<ts>[^\]]+)\] (?P<client_ip>[^ ]+) "
        r"(?P<remote_user>[^ ]+) (?P<request_id>[^ ]+) (?P<operation>[^ ]+) (?P<key>[^ ]+) "
        + q("request")
        + r" (?P<status>[0-9]{3}|-) (?P<error_code>[^ ]+) (?P<bytes>[0-9]+|-) (?P<object_size>[0-9]+|-) "
        r"(?P<request_time>[0-9]+|-) (?P<turnaround>[0-9]+|-) "
        + q("referer")
        + " "
        + q("user_agent")
        + r"(?: (?P<version_id>[^ ]+) (?P<host_id>[^ ]+) (?P<sig_version>[^ ]+) (?P<tls_cipher>[^ ]+) "
        r"(?P<auth_type>[^ ]+) (?P<host>[^ ]+) (?P<tls_protocol>[^ ]+))?"
    )


ALB = RegexFormat("alb", _alb(False), _alb(True), ts_kind="iso")
ELB = RegexFormat("elb", _elb(False), _elb(True), ts_kind="iso")
S3 = RegexFormat("s3", _s3(False), _s3(True), time_unit="ms")

# CloudFront's standard log fields, in order; copies of its logs often lose the header lines.
CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header "
    "cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher "
    "x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port "
    "time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start "
    "sc-range-end"
).split()
CLOUDFRONT = W3CFormat("cloudfront", "\t", "s", False, tuple(CLOUDFRONT_FIELDS))
