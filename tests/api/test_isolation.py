"""The API process never imports the ML stack: small image, fast start, no model code."""

from __future__ import annotations

import json
import subprocess
import sys

from devstack.processes import ROOT

FORBIDDEN = ("sklearn", "pandas", "mlflow", "scipy", "pyarrow", "numpy", "joblib")

PROBE = """
import json, sys
from api.main import create_app
from fastapi.testclient import TestClient
with TestClient(create_app()) as client:
    client.get("/openapi.json")
print(json.dumps(sorted(sys.modules)))
"""


def test_building_and_serving_the_api_imports_no_ml_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    modules = set(json.loads(out.splitlines()[-1]))

    assert "api.main" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert loaded == []
