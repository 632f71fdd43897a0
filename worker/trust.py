"""Only models irisq trained are ever loaded.

The MLflow server has no authentication: anyone who reaches it can register a version, or
write into a run's artifacts. So a version is loaded only when
- it carries the tag `irisq.signature`, which the training worker set when it registered
  it: the SHA-256 of its `model.skops` file and an HMAC of that digest and the run id,
  keyed by IRISQ_SECRET_KEY, a secret the registry never sees; and
- the file downloaded (or the local copy) has that digest; and then
- it is read with skops and this worker's own list of trusted types, never with MLflow's
  loader (which takes the list from the model's own files) and never with pickle.
Anything else fails the job with `untrusted_model`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import skops.io

from irisq.model_signatures import SIGNATURE_TAG, ModelSignatures, signed_digest
from worker.errors import ExpectedJobError

__all__ = ["SIGNATURE_TAG", "TRUSTED_TYPES", "ModelSigner", "UntrustedModelError", "load_estimator"]

MODEL_FILE = "model.skops"  # where MLflow's sklearn flavour keeps a skops model
TRUST_FILE = "irisq-trust.json"  # beside a local copy: the run id and signature it was loaded by
# Beyond the scikit-learn estimators skops trusts by default: SVC's calibration wrappers and
# the trees' node storage, which our pipelines use (worker.estimators).
TRUSTED_TYPES = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
]


class UntrustedModelError(ExpectedJobError):
    """The model version was not trained by this irisq (no valid signature), or its file
    changed since."""

    error_type = "untrusted_model"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ModelSigner:
    def __init__(self, secret: bytes) -> None:
        self._signatures = ModelSignatures(secret)

    def sign(self, run_id: str, model_dir: Path) -> str:
        """The `irisq.signature` tag value for the model saved in `model_dir`."""
        return self._signatures.sign(run_id, file_digest(model_dir / MODEL_FILE))

    def signed(self, run_id: str | None, signature: str | None) -> bool:
        """Whether the tag is a signature of ours for this run (the file not yet looked at)."""
        return self._signatures.signed(run_id, signature)

    def check(
        self,
        name: str,
        version: str,
        run_id: str | None,
        signature: str | None,
        model_dir: Path,
    ) -> None:
        """Raise UntrustedModelError unless the signature is ours and matches the file."""
        where = f"model '{name}' version {version}"
        if not signature:
            raise UntrustedModelError(
                f"{where} was not trained by this irisq (it has no {SIGNATURE_TAG} tag); "
                "it will not be loaded"
            )
        if not self.signed(run_id, signature):
            raise UntrustedModelError(
                f"{where} carries a signature that is not this irisq's; it will not be loaded"
            )
        model_file = model_dir / MODEL_FILE
        if not model_file.is_file() or file_digest(model_file) != signed_digest(signature):
            raise UntrustedModelError(
                f"{where}: its {MODEL_FILE} is not the file that was signed; it will not be loaded"
            )

    def remember(self, model_dir: Path, run_id: str | None, signature: str | None) -> None:
        """Keep what a local copy was checked against, to check it again offline."""
        trust = {"run_id": run_id, "signature": signature}
        (model_dir / TRUST_FILE).write_text(json.dumps(trust), encoding="utf-8")

    def check_copy(self, name: str, version: str, model_dir: Path) -> None:
        """Check a local copy against the run id and signature it was first checked with."""
        trust = _trust(model_dir)
        self.check(name, version, trust.get("run_id"), trust.get("signature"), model_dir)

    @staticmethod
    def copy_run_id(model_dir: Path) -> str | None:
        """The run a local copy was checked as coming from."""
        run_id = _trust(model_dir).get("run_id")
        return run_id if isinstance(run_id, str) else None


def _trust(model_dir: Path) -> dict[str, Any]:
    try:
        trust = json.loads((model_dir / TRUST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return trust if isinstance(trust, dict) else {}


def load_estimator(model_dir: Path) -> Any:
    """The estimator of a checked model folder: skops, with our trusted types only."""
    return skops.io.load(model_dir / MODEL_FILE, trusted=TRUSTED_TYPES)
