"""A challenger on the real stack: trained as one or set by hand, shadow-scored by the
predict worker on live rows while clients get the champion's answers, compared in
/v1/models and /metrics, and promoted or cleared."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from devstack.processes import machine_slowdown, wait_for
from irisq.schema import FEATURES, SPECIES
from tests.support.stack import SETOSA, Stack, metric_samples
from worker.registry import Registry
from worker.shadow import FLUSH_SECONDS

SHADOWED_PREDICTIONS = 2_000
GATE_SAID = r"(Promoted to champion by the quality gate|Not promoted): "


def _models(stack: Stack) -> dict[str, Any]:
    response = stack.api.get("/v1/models")
    assert response.status_code == 200, response.text
    models: dict[str, Any] = response.json()
    return models


@pytest.fixture
def restored(stack: Stack) -> Iterator[str]:
    """The champion before the test; after it, the champion again and no challenger."""
    champion = _models(stack)["champion"]
    yield champion
    stack.api.delete("/v1/models/challenger")
    if _models(stack)["champion"] != champion:
        promoted = stack.api.post(f"/v1/models/{champion}/promote")
        assert promoted.status_code == 200, promoted.text
        stack.serving(champion)


def _train_challenger(stack: Stack) -> dict[str, Any]:
    # A one-split tree names two species at most: it must disagree with the champion.
    response = stack.api.post(
        "/v1/training",
        params={"challenger": "true"},
        json={"algorithm": "decision_tree", "params": {"max_depth": 1}},
    )
    assert response.status_code == 202, response.text
    job = stack.wait(response.json()["job_id"], deadline_seconds=120)
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def _shadowed(stack: Stack) -> dict[str, Any]:
    """The comparison once the worker has noticed the challenger (it compared a row) and
    every probe sent meanwhile has been compared too (the count holds still over more than
    the workers' flush interval: worker.shadow gathers rows for FLUSH_SECONDS)."""

    def compared() -> dict[str, Any] | None:
        assert stack.predict([SETOSA])["status"] == "succeeded"
        shadow: dict[str, Any] | None = _models(stack)["shadow"]
        return shadow if shadow is not None and shadow["rows"] > 0 else None

    wait_for(compared, 60, "the predict worker shadow-scoring the challenger", every=0.2)
    last: list[int] = []

    def still() -> dict[str, Any] | None:
        shadow: dict[str, Any] = _models(stack)["shadow"]
        last.append(shadow["rows"])
        return shadow if len(last) > 1 and last[-1] == last[-2] else None

    interval = 2 * FLUSH_SECONDS * machine_slowdown()
    return wait_for(still, 30, "the probes' comparisons counted", every=interval)


def _compared_since(stack: Stack, before: dict[str, Any]) -> dict[str, Any] | None:
    shadow: dict[str, Any] = _models(stack)["shadow"]
    return shadow if shadow["rows"] >= before["rows"] + SHADOWED_PREDICTIONS else None


def test_clients_get_the_champions_answers_while_the_challenger_is_compared(
    stack: Stack, restored: str
) -> None:
    champion = restored
    trained = _train_challenger(stack)
    challenger = trained["model_version"]
    assert trained["as_challenger"] is True
    assert trained["promoted"] is False
    models = _models(stack)
    assert (models["champion"], models["challenger"]) == (champion, challenger)
    listed = {v["version"]: v for v in models["versions"]}
    assert listed[challenger]["is_challenger"] is True
    assert listed[challenger]["description"].startswith(
        "Not promoted: registered as the challenger"
    )

    before = _shadowed(stack)
    flowers = np.round(
        np.random.default_rng(11).uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (2_000, 4)),
        1,
    )
    job_ids = []
    for row in flowers.tolist():
        response = stack.api.post(
            "/v1/predictions", json={"rows": [dict(zip(FEATURES, row, strict=True))]}
        )
        assert response.status_code == 202, response.text
        job_ids.append(response.json()["job_id"])
    jobs = [stack.wait(job_id) for job_id in job_ids]
    # Compared once the answers are stored, a few hundred rows at a time (worker.shadow).
    after = wait_for(lambda: _compared_since(stack, before), 30, "the rows compared", every=0.2)

    registry = Registry(stack.settings)
    mine, theirs = registry.load(champion), registry.load(challenger)
    assert {job["status"] for job in jobs} == {"succeeded"}
    assert {job["result"]["model_version"] for job in jobs} == {champion}
    answered = [job["result"]["predictions"][0] for job in jobs]
    assert [p["species"] for p in answered] == mine.predict(flowers).tolist()
    probabilities = [[p["probabilities"][s] for s in SPECIES] for p in answered]
    assert probabilities == np.round(mine.predict_proba(flowers), 6).tolist()
    # Exactly these rows were compared, and the figures are what the two models say.
    assert after["rows"] - before["rows"] == SHADOWED_PREDICTIONS
    ours, others = mine.predict(flowers), theirs.predict(flowers)
    for a in SPECIES:
        for b in SPECIES:
            expected = int(((ours == a) & (others == b)).sum())
            assert after["confusion"][a][b] - before["confusion"][a][b] == expected, (a, b)
    assert 0 < after["agreement"] < 1
    assert after["failures"] == 0
    samples = metric_samples(stack.api.get("/metrics").text)
    pair = frozenset({("champion", champion), ("challenger", challenger)})
    assert samples["irisq_shadow_rows_total", pair] >= after["rows"]
    assert samples["irisq_shadow_agreement_ratio", pair] == pytest.approx(
        after["agreement"], abs=0.01
    )


def test_a_promoted_challenger_serves_and_stops_being_the_challenger(
    stack: Stack, restored: str
) -> None:
    challenger = _train_challenger(stack)["model_version"]

    promoted = stack.api.post(f"/v1/models/{challenger}/promote")

    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["champion"], promoted.json()["challenger"]) == (challenger, None)
    wait_for(
        lambda: stack.predict([SETOSA])["result"]["model_version"] == challenger,
        30,
        f"predictions served by version {challenger}",
        every=0.2,
    )


def test_a_challenger_is_set_and_cleared_by_hand(stack: Stack, restored: str) -> None:
    other = _train_challenger(stack)["model_version"]
    stack.api.delete("/v1/models/challenger")

    set_ = stack.api.put("/v1/models/challenger", json={"version": int(other)})
    read = stack.api.get("/v1/models/challenger")
    cleared = stack.api.delete("/v1/models/challenger")
    unset = stack.api.get("/v1/models/challenger")
    again = stack.api.delete("/v1/models/challenger")

    assert set_.status_code == 200, set_.text
    assert set_.json()["challenger"] == other
    assert read.json()["version"] == other
    assert read.json()["is_challenger"] is True
    assert unset.status_code == 404
    assert "there is no challenger" in unset.json()["detail"]
    assert set_.json()["shadow"]["champion"] == restored
    assert cleared.status_code == 200
    assert cleared.json()["challenger"] is None
    assert cleared.json()["shadow"] is None
    assert again.status_code == 200  # none to clear: the same outcome


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"version": 999_999}, 404, "no version 999999"),
        ({}, 422, "version"),
        ({"version": 0}, 422, "version"),
        ({"version": "three"}, 422, "version"),
        ({"version": 3, "share": 0.5}, 422, "share"),
    ],
    ids=["unknown", "missing", "zero", "not-a-number", "unknown-field"],
)
def test_a_bad_challenger_is_refused_naming_it(
    stack: Stack, restored: str, body: dict[str, Any], status: int, names: str
) -> None:
    before = _models(stack)["challenger"]

    response = stack.api.put("/v1/models/challenger", json=body)

    assert response.status_code == status, response.text
    assert names in response.text
    assert _models(stack)["challenger"] == before


def test_the_champion_cannot_be_its_own_challenger(stack: Stack, restored: str) -> None:
    response = stack.api.put("/v1/models/challenger", json={"version": int(restored)})

    assert response.status_code == 409
    assert f"version {restored} is the champion" in response.json()["detail"]


def test_one_version_names_its_run_and_the_gates_decision(stack: Stack, restored: str) -> None:
    found = stack.api.get(f"/v1/models/{restored}")
    missing = stack.api.get("/v1/models/999999")

    assert found.status_code == 200, found.text
    version = found.json()
    assert version["is_champion"] is True
    assert version["run_url"] == f"{stack.settings.mlflow_ui_url}/#/runs/{version['run_id']}"
    # What the gate said when it was trained (a champion may have been promoted by hand).
    assert re.match(GATE_SAID, version["description"])
    assert missing.status_code == 404
    assert "no version 999999" in missing.json()["detail"]
