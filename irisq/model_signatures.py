"""The signature irisq puts on each model version it registers, and its check.

The tag `irisq.signature` is `v1:<sha256 of the model file>:<HMAC of run id and digest>`,
keyed by IRISQ_SECRET_KEY, which the registry never sees. The API checks the tag before it
promotes a version; workers also check the file's digest before loading (worker.trust).
"""

from __future__ import annotations

import base64

from irisq.signing import Signer

SIGNATURE_TAG = "irisq.signature"
_VERSION = "v1"


class ModelSignatures:
    def __init__(self, secret: bytes) -> None:
        self._signer = Signer(secret, "models")

    def sign(self, run_id: str, digest: str) -> str:
        mac = self._signer.sign(f"{run_id}\n{digest}".encode())
        return f"{_VERSION}:{digest}:{base64.urlsafe_b64encode(mac).decode()}"

    def signed(self, run_id: str | None, signature: str | None) -> bool:
        """Whether `signature` is one of ours for this run (the file not looked at)."""
        parts = (signature or "").split(":")
        if run_id is None or len(parts) != 3 or parts[0] != _VERSION:
            return False
        try:
            mac = base64.urlsafe_b64decode(parts[2])
        except ValueError:
            return False
        return self._signer.verify(f"{run_id}\n{parts[1]}".encode(), mac)


def signed_digest(signature: str) -> str:
    """The file digest a (checked) signature vouches for."""
    return signature.split(":")[1]
