"""API keys: make one, and recognise one from its hash.

`python -m irisq.keys new --name alice --role predict` prints a new secret (give it to the
client) and the JSON entry for IRISQ_API_KEYS (give it to the API). Only the hash is stored.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from irisq.settings import ApiKey, Role

PREFIX = "irisq_"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and role (`anonymous`/admin when the API is open)."""

    name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ANONYMOUS = Caller(name="anonymous", role="admin")
OPEN_WARNING = (
    "NO API KEYS CONFIGURED: the API is open and every caller is admin. Fine on your own "
    "machine; set IRISQ_API_KEYS anywhere else (IRISQ_ENV=production refuses to start open)."
)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> str:
    """A random secret with a recognisable prefix (secret scanners look for such prefixes)."""
    return PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys, looked up by the hash of the presented secret."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = list(keys)

    @property
    def names(self) -> list[str]:
        return [key.name for key in self._keys]

    @property
    def open(self) -> bool:
        """No keys configured: every caller is admin (local development only)."""
        return not self._keys

    def caller(self, secret: str) -> Caller | None:
        digest = hash_key(secret)
        for key in self._keys:  # compare each in constant time: no timing hint on a near miss
            if hmac.compare_digest(digest, key.sha256):
                return Caller(name=key.name, role=key.role)
        return None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m irisq.keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="make a key")
    new.add_argument("--name", required=True, help="who holds it, e.g. frontend or alice")
    new.add_argument("--role", choices=["predict", "admin"], default="predict")
    args = parser.parse_args(argv)
    secret = new_key()
    entry = ApiKey(name=args.name, role=args.role, sha256=hash_key(secret))
    print(f"secret (give to the client, shown once): {secret}")
    print(f"entry for IRISQ_API_KEYS: {json.dumps(entry.model_dump())}")


if __name__ == "__main__":
    main()
