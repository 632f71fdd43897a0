"""One POST of a signed callback: resolve the host, refuse blocked addresses, send, classify.

The host is resolved here and the connection goes to an address that was checked (the URL's
host is replaced by it; `Host` and TLS's SNI and certificate check keep the name), so DNS
cannot answer one address to the check and another to the connection (rebinding).
Connections are never reused: two names on one address must not share a TLS session made
for one of them. Redirects are not followed (a 3xx could point anywhere).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

import httpx

from irisq.settings import Settings
from irisq.webhooks import IPAddress, blocked_reason, checks_addresses, normal_host

# httpx logs every request's URL at INFO; a callback URL may carry a token in its query, and
# our own lines say what happened without it.
logging.getLogger("httpx").setLevel(logging.WARNING)

# Statuses worth trying again: the receiver is busy, overloaded or broken for now.
RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


@dataclass(frozen=True)
class Attempt:
    """How one POST went: the status if one came back, why it did not deliver, what next."""

    status: int | None
    error: str | None = None
    retry: bool = False  # worth trying again later
    retry_after: float | None = None  # seconds the receiver asked for (429, 503)

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@lru_cache
def http_client(timeout_seconds: float) -> httpx.Client:
    """One client per process, safe to share between the pool's threads."""
    return httpx.Client(
        timeout=timeout_seconds,
        follow_redirects=False,
        trust_env=False,  # no proxy from the environment: the address check must hold
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"user-agent": "irisq-webhooks/1"},
    )


def resolve(host: str, port: int, settings: Settings) -> list[IPAddress]:
    """The addresses to try for `host`; ValueError naming a blocked one, if any is."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # `%zone` of a link-local IPv6 address is dropped: such an address is refused anyway.
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos))
    if checks_addresses(host, settings):
        for address in addresses:
            if (reason := blocked_reason(address)) is not None:
                raise ValueError(f"{host} resolves to {reason} ({address}), which is refused")
    return addresses


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def post(url: str, headers: dict[str, str], body: bytes, settings: Settings) -> Attempt:
    """POST `body` to `url` once, at an address that passed the checks."""
    parts = urlsplit(url)
    host = normal_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port, settings)
    except ValueError as exc:  # a blocked address: trying again would not change that
        return Attempt(None, str(exc))
    except OSError as exc:  # no such name (yet), or the resolver is away
        return Attempt(None, f"could not resolve {host}: {exc}", retry=True)
    client = http_client(settings.webhook_timeout_seconds)
    target = httpx.URL(url)
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 literal
    host_header = bracketed if parts.port is None else f"{bracketed}:{parts.port}"
    deadline = time.monotonic() + settings.webhook_timeout_seconds
    error = f"{host} has no address"
    for address in addresses:  # the next one only if this one refused the connection
        request = client.build_request(
            "POST",
            target.copy_with(host=str(address)),
            content=body,
            headers={**headers, "host": host_header},
            extensions={"sni_hostname": host},
        )
        try:
            response = client.send(request, stream=True)  # the body is never read
            response.close()
        except httpx.ConnectError as exc:
            error = f"could not connect to {host} ({address}): {exc or type(exc).__name__}"
            if time.monotonic() < deadline:
                continue
            return Attempt(None, error, retry=True)
        except httpx.TimeoutException:
            return Attempt(None, f"no answer within {settings.webhook_timeout_seconds} s", True)
        except httpx.TransportError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}", retry=True)
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(status)
        if 300 <= status < 400:
            return Attempt(status, f"answered {status}; redirects are not followed")
        retry_after = _retry_after(response.headers.get("retry-after"))
        return Attempt(status, f"answered {status}", status in RETRY_STATUSES, retry_after)
    return Attempt(None, error, retry=True)
