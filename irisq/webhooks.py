"""Webhooks the Standard Webhooks way: signing, and which callback URLs may be called.

A delivery carries `webhook-id` (the same on every retry, so a receiver can drop repeats),
`webhook-timestamp` (integer seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, keyed by the bytes of a `whsec_<base64>` secret, exactly as the
`standardwebhooks` library signs and verifies (docs/webhooks.md has a receiver's check).

The URL checks guard against server-side request forgery: a callback URL must not make a
worker inside the network call what only the network can reach (Redis, MLflow, a cloud's
metadata service). At submit (`callback_url_problem`) only the URL's form and a literal
address are checked, without DNS: a name may resolve elsewhere later. The worker resolves
the name when it delivers, refuses blocked addresses (`blocked_reason`) and connects to
the address it checked, so a name cannot be re-pointed between the check and the call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
from typing import TYPE_CHECKING, Final
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from irisq.settings import Settings

SECRET_PREFIX: Final = "whsec_"
# The Standard Webhooks spec asks for secrets of 24 to 64 bytes.
SECRET_MIN_BYTES: Final = 24
SECRET_MAX_BYTES: Final = 64
URL_MAX_CHARS: Final = 2048
# The form of a callback URL, as the API's document states it (an ECMA and a Python regex
# alike): http(s), a host name or IPv4 address (IPv6 by name: a bracketed literal is the one
# form Python's URL parser may refuse), a port in range, then any printable path and query.
_PORT = r"(0|[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN: Final = (
    r"^https?://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?(:" + _PORT + r")?([/?#][\x21-\x7e]*)?$"
)
_URL_FORM = re.compile(URL_PATTERN)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services (AWS, GCP, Azure, OpenStack; AWS's IPv6 one; Alibaba's), named
# apart from their ranges so a refusal says what was at stake.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
# IPv6 prefixes that carry an IPv4 address a gateway forwards to (NAT64, RFC 6052 and 8215).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Names that mean this machine (RFC 6761) or a metadata service, whatever DNS says.
_LOCAL_NAMES = ("localhost", "metadata.google.internal")


class WebhookSecretError(ValueError):
    """A webhook secret is not `whsec_` followed by 24-64 base64-encoded bytes."""


def new_secret() -> str:
    """A fresh secret in the `whsec_<base64>` form receivers' libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret; WebhookSecretError naming what is wrong."""
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookSecretError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise WebhookSecretError(
            f"a webhook secret is {SECRET_PREFIX!r} then standard base64 (A-Z a-z 0-9 + / =)"
        ) from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise WebhookSecretError(
            f"a webhook secret encodes {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes, "
            f"not {len(key)}"
        )
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{msg_id}.{timestamp}.{body}` under the secret's key."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery of `body` (JSON)."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def blocked_reason(address: IPAddress) -> str | None:
    """Why a worker must not call `address`, or None for a public address."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 address: judge that one.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(embedded)
    for reason, hit in (
        ("a loopback address", address.is_loopback),
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
    ):
        if hit:
            return reason
    if not address.is_global:  # shared (carrier-grade NAT) space and the like
        return "an address that is not publicly routable"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, with no DNS: `[::1]`, `127.0.0.1`, and the short
    and numeric IPv4 forms resolvers accept too (`127.1`, `2130706433`, `0x7f.1`)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def normal_host(host: str) -> str:
    """A host as the allow-list compares it: lower case, without a final dot or brackets."""
    return host.lower().rstrip(".").strip("[]")


def host_allowed(host: str, settings: Settings) -> bool:
    """Whether `host` is exempt from the address checks (IRISQ_WEBHOOK_ALLOWED_HOSTS)."""
    return normal_host(host) in {normal_host(h) for h in settings.webhook_allowed_hosts}


def checks_addresses(host: str, settings: Settings) -> bool:
    """Whether calls to `host` must avoid blocked addresses: in production, unless allowed."""
    return settings.env == "production" and not host_allowed(host, settings)


def _form_problem(url: str) -> tuple[str | None, SplitResult | None]:
    if len(url) > URL_MAX_CHARS:
        return f"is longer than {URL_MAX_CHARS} characters", None
    if not url.isascii() or not url.isprintable() or " " in url:
        return "must be printable ASCII without spaces (write other names in punycode)", None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (read for its check: a port out of range raises)
    except ValueError as exc:
        return f"is not a valid URL ({exc})", None
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL", None
    if "@" in parts.netloc:
        return "must not hold credentials (user:password@); the signature authenticates", None
    if not parts.hostname:
        return "has no host", None
    if not _URL_FORM.fullmatch(url):
        return "must be http(s)://host[:port][/path], the host a name or an IPv4 address", None
    return None, parts


def callback_url_problem(url: str, settings: Settings, owner: str | None = None) -> str | None:
    """None if `url` may be given as a callback, else a short reason a person can act on.

    No DNS here (the answer could change before delivery): only the form, and in production
    the hosts that are an address or this machine by themselves. `owner`, when given, must
    have a webhook secret to sign with.
    """
    problem, parts = _form_problem(url)
    if problem is not None or parts is None:
        return problem
    if settings.webhook_secret_for(owner) is None:
        return "cannot be used: this server has no webhook secret (IRISQ_WEBHOOK_SECRET)"
    host = parts.hostname or ""
    if not checks_addresses(host, settings):
        return None
    name = normal_host(host)
    if any(name == local or name.endswith("." + local) for local in _LOCAL_NAMES):
        return f"must not point at {name}: callbacks go to public hosts"
    address = literal_address(name)
    if address is not None and (reason := blocked_reason(address)) is not None:
        return f"must not point at {reason} ({address}): callbacks go to public hosts"
    return None


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["new-secret"]:
        sys.exit("usage: python -m irisq.webhooks new-secret")
    print(new_secret())
