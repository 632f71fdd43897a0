"""The API as it runs in production: its own uvicorn process, API keys required.

On the session's Redis, MLflow and workers; each attack test measures this process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from subprocess import Popen

import pytest

from devstack.processes import api_process
from irisq.keys import hash_key, new_key
from tests.support.stack import Stack

ALICE, BOB, ADMIN = new_key(), new_key(), new_key()
KEYS = [
    {"name": "alice", "role": "predict", "sha256": hash_key(ALICE)},
    {"name": "bob", "role": "predict", "sha256": hash_key(BOB)},
    {"name": "ops", "role": "admin", "sha256": hash_key(ADMIN)},
]
# Short enough to see each limit act within a test.
LIMITS = {
    "IRISQ_BODY_IDLE_TIMEOUT_SECONDS": "2",
    "IRISQ_BODY_GRACE_SECONDS": "1",
    "IRISQ_HEADER_TIMEOUT_SECONDS": "3",
    "IRISQ_MAX_CONNECTIONS_PER_CLIENT": "20",
    "IRISQ_AUTH_FAILURES_PER_MINUTE": "20",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class KeyedApi:
    url: str
    process: Popen[bytes]


@pytest.fixture(scope="session")
def keyed_api(stack: Stack) -> Iterator[KeyedApi]:
    env = {**stack.env, **LIMITS, "IRISQ_API_KEYS": json.dumps(KEYS)}
    with api_process(env, stack.logs / "api-keyed.log") as (url, process):
        yield KeyedApi(url, process)
