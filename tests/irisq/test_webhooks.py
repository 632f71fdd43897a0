"""Standard Webhooks signing, secrets, and the callback URLs the API accepts."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from pydantic import SecretStr, ValidationError

from irisq.settings import ApiKey, Settings
from irisq.webhooks import (
    WebhookSecretError,
    blocked_reason,
    callback_url_problem,
    new_secret,
    secret_bytes,
    sign,
    signed_headers,
)

PRODUCTION_KEY = "a-production-secret-key-of-32-characters-or-more"


def test_sign_matches_the_standard_webhooks_reference_vector() -> None:
    # The signature test of the standardwebhooks Python library (test_sign_function).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'

    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_headers_carry_id_timestamp_and_signature() -> None:
    secret = new_secret()

    headers = signed_headers(secret, "msg_1", 1700000000, b"{}")

    assert headers == {
        "content-type": "application/json",
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign(secret, "msg_1", 1700000000, b"{}"),
    }
    assert sign(secret, "msg_1", 1700000000, b"{ }") != headers["webhook-signature"]
    assert sign(secret, "msg_1", 1700000001, b"{}") != headers["webhook-signature"]


def test_a_new_secret_has_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()

    assert first != second
    assert first.startswith("whsec_")
    assert len(secret_bytes(first)) == 32


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),
        ("whsec_not base64!", "standard base64"),
        ("whsec_" + base64.b64encode(b"x" * 23).decode(), "24 to 64 bytes, not 23"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "24 to 64 bytes, not 65"),
    ],
)
def test_a_malformed_secret_is_refused(secret: str, message: str) -> None:
    with pytest.raises(WebhookSecretError, match=message):
        secret_bytes(secret)


def test_settings_refuse_a_malformed_secret_without_printing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(webhook_secret="whsec_c2VjcmV0LXZhbHVl")

    assert "IRISQ_WEBHOOK_SECRET: a webhook secret encodes 24 to 64 bytes" in str(caught.value)
    assert "c2VjcmV0LXZhbHVl" not in str(caught.value)
    with pytest.raises(ValidationError, match=r"IRISQ_WEBHOOK_SECRETS\['bob'\]"):
        Settings(webhook_secrets={"bob": "nope"})


def test_an_empty_secret_is_none_and_a_key_may_have_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IRISQ_WEBHOOK_SECRET", "")
    assert Settings().webhook_secret_for(None) is None

    default, bobs = new_secret(), new_secret()
    settings = Settings(webhook_secret=default, webhook_secrets={"bob": SecretStr(bobs)})

    assert settings.webhook_secret_for("bob") == bobs
    assert settings.webhook_secret_for("alice") == default
    assert settings.webhook_secret_for(None) == default


def test_per_key_secrets_must_name_a_configured_key() -> None:
    keys = [ApiKey(name="alice", role="predict", sha256="0" * 64)]

    with pytest.raises(ValidationError, match=r"names keys that do not exist: \['bob'\]"):
        Settings(api_keys=keys, webhook_secrets={"bob": new_secret()})
    Settings(api_keys=keys, webhook_secrets={"alice": new_secret()})


def test_the_lease_must_outlast_an_attempt() -> None:
    with pytest.raises(ValidationError, match="must exceed IRISQ_WEBHOOK_TIMEOUT_SECONDS"):
        Settings(webhook_timeout_seconds=10, webhook_lease_seconds=10)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a cloud metadata address"),
        ("2002:a00:1::", "a private address"),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", "a loopback address"),  # NAT64 of 127.0.0.1
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fc00::1", "a private address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a private address"),  # reserved, and private to Python
        ("100.64.0.1", "an address that is not publicly routable"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_blocked_addresses(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def _production(**extra: object) -> Settings:
    return Settings(env="production", secret_key=PRODUCTION_KEY, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "in_production", "in_development"),
    [
        ("https://hooks.example.com/irisq?tenant=7", None, None),
        ("http://8.8.8.8/hook", None, None),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address", None),
        ("http://127.0.0.1:8002/", "a loopback address (127.0.0.1)", None),
        # An IPv6 host goes by its name: a bracketed literal is refused in any mode.
        ("http://[::1]:9000/", "a name or an IPv4 address", "a name or an IPv4 address"),
        ("http://[2001:db8::1]/", "a name or an IPv4 address", "a name or an IPv4 address"),
        ("HTTPS://hooks.example.com/", "http(s)://host", "http(s)://host"),
        ("http://hooks..example.com/", "http(s)://host", "http(s)://host"),
        ("http://2130706433/", "a loopback address (127.0.0.1)", None),
        ("http://0x7f.1/", "a loopback address (127.0.0.1)", None),
        ("http://10.0.0.5/", "a private address", None),
        ("http://localhost:9000/", "must not point at localhost", None),
        ("http://LOCALHOST./", "must not point at localhost", None),
        ("http://api.localhost/", "must not point at api.localhost", None),
        ("http://metadata.google.internal/", "metadata.google.internal", None),
        ("http://hooks.internal/", None, None),  # allow-listed
        ("http://10.0.0.7:8080/hook", None, None),  # allow-listed
        ("http://user:pw@example.com/", "credentials", "credentials"),
        ("http://token@example.com/", "credentials", "credentials"),
        ("ftp://example.com/", "http:// or https://", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://", "http:// or https://"),
        ("example.com/hook", "http:// or https://", "http:// or https://"),
        ("https:///hook", "has no host", "has no host"),
        ("https://example.com/" + "a" * 2048, "longer than 2048", "longer than 2048"),
        ("https://example.com/a b", "without spaces", "without spaces"),
        ("https://bücher.de/", "punycode", "punycode"),
        ("http://[::1/", "not a valid URL", "not a valid URL"),
        ("http://example.com:70000/", "not a valid URL", "not a valid URL"),
    ],
)
def test_callback_url_problems(
    url: str, in_production: str | None, in_development: str | None
) -> None:
    production = _production(webhook_allowed_hosts=["hooks.internal", "10.0.0.7"])
    development = Settings(env="development")

    for settings, expected in ((production, in_production), (development, in_development)):
        problem = callback_url_problem(url, settings, "alice")
        if expected is None:
            assert problem is None, (url, settings.env)
        else:
            assert problem is not None, (url, settings.env)
            assert expected in problem


def test_a_callback_needs_a_secret_to_sign_with() -> None:
    settings = Settings(webhook_secret=None)

    assert "no webhook secret" in (callback_url_problem("https://example.com/", settings) or "")
    keyed = Settings(webhook_secret=None, webhook_secrets={"bob": SecretStr(new_secret())})
    assert callback_url_problem("https://example.com/", keyed, "bob") is None
    assert callback_url_problem("https://example.com/", keyed, "alice") is not None
