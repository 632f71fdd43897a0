"""HMAC signatures with the one secret API and workers share (IRISQ_SECRET_KEY).

Each use gets its own key derived from the secret, so a signature made for one purpose
(a job id) can never be replayed as another (a model).
"""

from __future__ import annotations

import hashlib
import hmac


class Signer:
    """Signs and checks messages for one purpose."""

    def __init__(self, secret: bytes, purpose: str) -> None:
        self._key = hmac.new(secret, f"irisq {purpose}".encode(), hashlib.sha256).digest()

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Constant-time comparison with the whole signature (a shorter one never passes)."""
        return hmac.compare_digest(self.sign(message), signature)
