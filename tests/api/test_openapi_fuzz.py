"""Schemathesis against the live `/openapi.json` of the API under uvicorn, default checks.

Every operation is fuzzed with valid and invalid requests; every answer must be documented
(status, content type, headers, body schema), valid requests accepted, invalid ones refused,
and no request may make the API answer 500. Once open (no keys), once with an admin key.

Then the stateful phase: scenarios that chain a submission to what follows it (the job's
status, its cancel and delete, a batch's result and errors) with the job id the API handed
out, so those operations meet real jobs rather than random ids, and checks that look across
steps (a resource just created must be found; one deleted must stay gone) get to run.

The fuzzed APIs share the session's private Redis server but use a database no worker
consumes, so their submissions only queue and never reach the session's workers. They also
name their own registered model, so fuzzed promotions find no version (404) and never move
the session's champion.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode, overrides
from schemathesis.generation.stateful.state_machine import APIStateMachine
from schemathesis.schemas import BaseSchema

from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.idempotency import KEY_MAX_CHARS, KEY_PATTERN
from api.listing import CURSOR_MAX_CHARS, Cursors, Position
from devstack.processes import api_server
from irisq.keys import hash_key
from irisq.settings import Settings

# A Redis database of the session's server that no worker reads (the workers use /0).
FUZZ_DB = 3
FUZZ_SECRET = "irisq_fuzz-admin-key-for-the-openapi-test"
EXAMPLES_PER_OPERATION = 40
# The stateful phase: scenarios of up to this many steps (each a real HTTP round trip).
SCENARIOS = 80
STEPS_PER_SCENARIO = 10

# `/readyz` answers its documented 503 while a part is missing, and here no worker serves
# the fuzz database and its model has no champion: a readiness probe's answer, not a server
# error. So do MLflow's probes `/ping` and `/health`, which answer 503 while nothing can be
# scored. Every other check still applies to them, and any other 5xx anywhere still fails.
# Likewise `/invocations` (and the same under MLflow's deployments path) holds a request
# for its result and, with no worker, answers its documented 504 after the shortened wait.
INVOCATIONS = ["/invocations", "/endpoints/{endpoint}/invocations"]
# What `positive_data_acceptance` takes for an answer to a valid request by default.
VALID_REQUEST_ANSWERS = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONFIG: dict[str, Any] = {
    "operations": [
        {
            "include-path": ["/readyz", "/ping", "/health"],
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}},
        },
        {
            "include-path": INVOCATIONS,
            "checks": {
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "504"]},
                # `inputs` by columns must give every column as many values, which JSON
                # Schema cannot say; the documented 400 refuses the rest, as MLflow does.
                "positive_data_acceptance": {"expected-statuses": [*VALID_REQUEST_ANSWERS, "400"]},
            },
        },
        # No train worker serves the fuzz database: drift answers its documented 503. A
        # window must run forwards and last at most 31 days, which the schema cannot say:
        # the documented 422 names the field.
        {
            "include-path": ["/v1/monitoring/drift"],
            "checks": {
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]},
                "positive_data_acceptance": {"expected-statuses": [*VALID_REQUEST_ANSWERS, "422"]},
            },
        },
        # The endpoint is the model's name; any other is a 404 before the body is read.
        {"include-path": INVOCATIONS[1], "parameters": {"path.endpoint": "irisq-fuzz"}},
        # A job deleted, expired or evicted for its key's quota answers its documented 410
        # (DESIGN: "an expired one says so"): an answer to a valid id, as 404 is.
        {
            "include-path": [
                "/v1/jobs/{job_id}",
                "/v1/jobs/{job_id}/cancel",
                "/v1/jobs/{job_id}/events",
                "/v1/batches/{job_id}/result",
                "/v1/batches/{job_id}/errors",
            ],
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*VALID_REQUEST_ANSWERS, "410"]}
            },
        },
        # With no worker, a generated `wait` of up to a minute would hold each request that
        # long for nothing; the wait itself is tested against real workers elsewhere.
        {
            "include-path": "/v1/predictions",
            "parameters": {"query.wait": 0.001, "header.Prefer": "wait=0.001"},
        },
    ]
}


# The API's document links each submission's 202 to the operations that take its job id
# (and a delete's 204 to reading the job again); the stateful phase follows those links.
# Two more are added here, for schemathesis's sake: it also infers links from a prediction's
# 200 (`Job`) to a batch's result and errors, a 200 that never comes here (no worker). It
# keeps a budget per pair of operations whatever the status, and holds new scenarios' first
# steps back while a pair has budget left: a pair only that 200 reaches would stall a long
# scenario ("No progress can be made", seen at 15 steps).
JOB_ID_IN_BODY = "$response.body#/job_id"
JOB_LINKS: list[tuple[str, str, str, str]] = [
    ("create_prediction", "202", "get_batch_result", JOB_ID_IN_BODY),
    ("create_prediction", "202", "get_batch_errors", JOB_ID_IN_BODY),
]


def _with_job_links(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every link of `JOB_LINKS` that it does not declare itself."""
    responses = {
        operation["operationId"]: operation["responses"]
        for methods in document["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for source, status, target, expression in JOB_LINKS:
        links = responses[source][status].setdefault("links", {})
        if not any(link.get("operationId") == target for link in links.values()):
            links[target] = {"operationId": target, "parameters": {"job_id": expression}}
    return document


@st.composite
def _csv_files(draw: st.DrawFn) -> bytes:
    """What `POST /v1/batches` and `/invocations` document as `text/csv`: UTF-8, a header
    naming the four measurements (in one of the spellings people use), then rows of
    measurements. (Bad cells in batch files are the CSV property tests' business.)"""
    spellings = draw(
        st.sampled_from(
            [
                ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"],
                ["SepalLengthCm", "SepalWidthCm", "PetalLengthCm", "PetalWidthCm", "Species"],
            ]
        )
    )
    delimiter = draw(st.sampled_from([",", ";"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    measurement = st.floats(min_value=0.1, max_value=9.9).map(lambda value: f"{value:.1f}")
    row = st.lists(measurement, min_size=len(spellings), max_size=len(spellings))
    rows = draw(st.lists(row, min_size=1, max_size=5))
    lines = [delimiter.join(cells) for cells in [spellings, *rows]]
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + newline.join(lines) + newline).encode()


schemathesis.openapi.media_type("text/csv", _csv_files())


def _fuzz_env(redis_url: str, mlflow_url: str, batch_dir: Path, api_keys: str) -> dict[str, str]:
    return {
        "IRISQ_ENV": "development",
        "IRISQ_REDIS_URL": redis_url.rsplit("/", 1)[0] + f"/{FUZZ_DB}",
        "IRISQ_MLFLOW_TRACKING_URI": mlflow_url,
        "IRISQ_MLFLOW_UI_URL": mlflow_url,
        "IRISQ_MODEL_NAME": "irisq-fuzz",  # no versions: the session's champion stays put
        "IRISQ_BATCH_DIR": str(batch_dir),
        "IRISQ_API_KEYS": api_keys,
        # The per-key rate limit (429, documented) would make the run depend on timing; so
        # would the limit on failed keys, which schemathesis sends hundreds of on purpose.
        "IRISQ_RATE_LIMIT_PER_SECOND": "0",
        "IRISQ_AUTH_FAILURES_PER_MINUTE": "1000000",
        "IRISQ_INVOCATIONS_WAIT_SECONDS": "0.001",
        # With no worker, no group of predictions ever ends, so each waits out the batcher's
        # delay before it is sent: 1 ms, not 20 (over a thousand fuzzed requests wait it).
        "IRISQ_MICRO_BATCH_MAX_DELAY_MS": "1",
        # With no worker no job ends, so a job's event stream would stay open its whole
        # 15 minutes (a comment line every 15 s keeps it alive) and each scenario that opens
        # one would wait that long; a client reconnects after the end (tested elsewhere).
        "IRISQ_EVENTS_MAX_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def open_api_url(
    redis_url: str, mlflow_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API under uvicorn without keys (every caller is admin)."""
    folder = tmp_path_factory.mktemp("fuzz-open")
    env = _fuzz_env(redis_url, mlflow_url, folder / "batches", "[]")
    with api_server(env, folder / "api.log") as url:
        yield url


@pytest.fixture(scope="module")
def keyed_api_url(
    redis_url: str, mlflow_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The API under uvicorn with one admin key, as it runs in production."""
    folder = tmp_path_factory.mktemp("fuzz-keyed")
    keys = f'[{{"name": "fuzz", "role": "admin", "sha256": "{hash_key(FUZZ_SECRET)}"}}]'
    env = _fuzz_env(redis_url, mlflow_url, folder / "batches", keys)
    with api_server(env, folder / "api.log") as url:
        yield url


@pytest.fixture(autouse=True)
def _legacy_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 reads `item._nodeid` to label each operation's subtest; pytest 9.2
    keeps the id elsewhere (`_id`). Give it the attribute back (it only renames the item)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _live_schema(url: str, config: dict[str, Any]) -> BaseSchema:
    """The API's own `/openapi.json`, with the two links of `JOB_LINKS`."""
    document = httpx.get(f"{url}/openapi.json", timeout=10).raise_for_status().json()
    return schemathesis.openapi.from_dict(
        _with_job_links(document),
        config=SchemathesisConfig.from_dict({**config, "base-url": url}),
    )


@pytest.fixture
def open_schema(open_api_url: str) -> BaseSchema:
    return _live_schema(open_api_url, CONFIG)


@pytest.fixture
def keyed_schema(keyed_api_url: str) -> BaseSchema:
    """Schemathesis sends the key for the `HTTPBearer` scheme the document declares, so it
    knows the key is the credential: its requests without one must get 401."""
    auth = {"auth": {"openapi": {"HTTPBearer": {"bearer": FUZZ_SECRET}}}}
    return _live_schema(keyed_api_url, {**CONFIG, **auth})


open_api = schemathesis.pytest.from_fixture("open_schema")
keyed_api = schemathesis.pytest.from_fixture("keyed_schema")
# Derandomized: CI sends the same requests each run; no example database in the tree. Each
# request is a real HTTP round trip, which a slow CI machine must not turn into a failure.
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# Two values a schema can only describe, not make valid: a listing cursor is signed by the
# API (one it did not make is refused, 422 naming it), and an Idempotency-Key sent again
# with another body is refused too (422 naming it, as the issue asks). A real client sends
# back the cursors it was given and a new key per request: so does this fuzzer, wherever it
# drew a value the schema allows (an invalid one is left for the API to refuse).


def _labelled_by_its_parts(case: Case[Any]) -> None:
    """schemathesis 4.32's coverage phase may build a case it calls positive (a boundary value
    of one parameter) on a template that holds another parameter's negative value (seen:
    `Last-Event-ID: 0`, which the header's pattern refuses). A case with a negative part is
    negative: label it so, and the check that fits it (refused, not 500) applies."""
    meta = case.meta
    if meta is not None and any(
        part.mode is GenerationMode.NEGATIVE for part in meta.components.values()
    ):
        meta.generation.mode = GenerationMode.NEGATIVE


def _as_a_client_would(case: Case[Any]) -> None:
    """`case` with a cursor the API made and a key not used before, where it drew valid ones."""
    _labelled_by_its_parts(case)
    query: dict[str, Any] = case.query or {}
    cursor = query.get("cursor")
    if isinstance(cursor, str) and len(cursor) <= CURSOR_MAX_CHARS:
        cursors = Cursors(Settings().signing_key())  # the fuzzed APIs share the test's key
        query["cursor"] = cursors.encode(Position(time.time(), "job-from-a-page"))
    headers: MutableMapping[str, Any] = case.headers or {}
    key = headers.get(IDEMPOTENCY_KEY)
    if isinstance(key, str) and len(key) <= KEY_MAX_CHARS and re.fullmatch(KEY_PATTERN, key):
        headers[IDEMPOTENCY_KEY] = str(uuid.uuid4())


@open_api.parametrize()
@FUZZ_SETTINGS
def test_the_open_api_conforms_to_its_schema(case: Case[Any]) -> None:
    _as_a_client_would(case)
    case.call_and_validate()


@keyed_api.parametrize()
@FUZZ_SETTINGS
def test_the_keyed_api_conforms_to_its_schema(case: Case[Any]) -> None:
    _as_a_client_would(case)
    case.call_and_validate()


# Like schemathesis's own stateful phase: generate only, for a shrink would replay live HTTP
# sequences against a state the first run already changed. Its health checks judge the
# generation of single values; a scenario of round trips is slow and may filter by design.
STATEFUL_SETTINGS = settings(
    max_examples=SCENARIOS,
    stateful_step_count=STEPS_PER_SCENARIO,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _workflow(schema: BaseSchema) -> type[APIStateMachine]:
    """The schema's state machine, with the fixed `parameters` of the config applied to every
    step: pytest's state machine leaves them out (its `parametrize` and the CLI's stateful
    phase apply them, the latter in this same `before_call`)."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]  # a class made at run time
        def before_call(self, case: Case[Any]) -> None:
            overrides.for_operation(schema.config, operation=case.operation).apply_to(case)
            _as_a_client_would(case)

    return Workflow


def test_the_open_api_holds_up_statefully(open_schema: BaseSchema) -> None:
    _workflow(open_schema).run(settings=STATEFUL_SETTINGS)


def test_the_keyed_api_holds_up_statefully(keyed_schema: BaseSchema) -> None:
    _workflow(keyed_schema).run(settings=STATEFUL_SETTINGS)
