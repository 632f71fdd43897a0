"""The model cache: load once per process, follow the champion alias when it moves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from devstack.processes import free_port, mlflow_server
from irisq.job_types import PredictionResult
from irisq.settings import Settings
from tests.worker.conftest import sqlite_store
from worker import inference
from worker.inference import ModelCache, predict_jobs
from worker.registry import ModelNotFoundError, Registry
from worker.training import iris_split, train_and_register
from worker.trust import TRUST_FILE


class Clock:
    """A clock the test moves by hand, so "after the refresh interval" needs no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_champion_is_a_clear_error(sqlite_settings: Settings) -> None:
    cache = ModelCache(Registry(sqlite_settings), refresh_seconds=60)

    with pytest.raises(ModelNotFoundError, match="no champion model is registered yet"):
        cache.get()


def test_models_load_once_and_follow_the_alias(sqlite_settings: Settings) -> None:
    first = train_and_register("logistic_regression", {}, sqlite_settings).model_version
    clock = Clock()
    registry = Registry(sqlite_settings)
    cache = ModelCache(registry, refresh_seconds=5, clock=clock)

    version, estimator = cache.get()
    assert version == first
    assert cache.get()[1] is estimator  # cached: not loaded again

    second = train_and_register("logistic_regression", {"C": 2.0}, sqlite_settings)
    registry.promote(second.model_version)  # the alias moves, whatever the gate said
    assert cache.get()[0] == first  # within the refresh interval the old champion serves

    clock.now += 5
    assert cache.get()[0] == second.model_version
    assert cache.get("1")[0] == "1"


def test_a_process_idle_for_long_looks_at_the_registry_before_answering(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers refresh in the background, so a job never waits on the registry, except the
    first after a quiet spell: it waits (briefly) so as not to name a champion of minutes
    ago. The wait is stretched here: the test is about what is waited for, not how long."""
    monkeypatch.setattr(inference, "FRESH_WAIT_SECONDS", 30.0)
    registry = Registry(sqlite_settings)
    clock = Clock()
    cache = ModelCache(registry, refresh_seconds=2, clock=clock, background=True)
    before = cache.get()[0]
    newer = train_and_register("logistic_regression", {"C": 3.0}, sqlite_settings).model_version
    registry.promote(newer)

    clock.now += inference.LONG_STALE_SECONDS

    assert cache.get()[0] == newer != before


def test_an_unknown_version_is_model_not_found(sqlite_settings: Settings) -> None:
    cache = ModelCache(Registry(sqlite_settings), refresh_seconds=5)

    with pytest.raises(ModelNotFoundError, match="has no version 42"):
        cache.get("42")


def test_scoring_keeps_row_order_and_probabilities_sum_to_one(sqlite_settings: Settings) -> None:
    cache = ModelCache(Registry(sqlite_settings), refresh_seconds=5)
    _, x_test, _, y_test = iris_split()

    rows = x_test.tolist()
    jobs = predict_jobs(cache, "champion", [rows, rows[:1], rows[1:3]])
    # What the API and clients read: the JSON, validated by the contract's model.
    result, *shares = [PredictionResult.model_validate_json(job.result_json()) for job in jobs]

    predicted = [p.species for p in result.predictions]
    assert [share.predictions for share in shares] == [
        result.predictions[:1],
        result.predictions[1:3],
    ]  # each job its own rows, in order
    assert np.mean(np.array(predicted) == y_test) > 0.85
    for p in result.predictions:
        probabilities = p.probabilities.model_dump()
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert probabilities[p.species] == max(probabilities.values())
    version, estimator = cache.get()
    assert estimator.predict(x_test).tolist() == predicted
    assert result.model_version == version


def test_a_copy_from_another_registry_is_replaced(sqlite_settings: Settings) -> None:
    """Version numbers start again in a new registry (`make clean-var`): a local copy of an
    old "version 1" must not serve for the new one."""
    version = train_and_register("logistic_regression", {}, sqlite_settings).model_version
    registry = Registry(sqlite_settings)
    registry.load(version)  # makes the local copy
    trust = registry.copies / version / TRUST_FILE
    recorded = json.loads(trust.read_text())
    trust.write_text(json.dumps({**recorded, "run_id": "a-run-of-another-registry"}))

    registry.load(version)

    assert json.loads(trust.read_text())["run_id"] == recorded["run_id"]  # downloaded again


def test_a_version_found_missing_serves_once_it_becomes_the_champion(
    sqlite_settings: Settings,
) -> None:
    """A fresh stack: a version asked for before it is registered is remembered as missing,
    but not once the registry names it champion (the first training's, on `make run`)."""
    registry = Registry(sqlite_settings)
    cache = ModelCache(registry, refresh_seconds=0)
    latest = registry.client.search_model_versions(f"name = '{registry.name}'")
    upcoming = str(max((int(v.version) for v in latest), default=0) + 1)
    with pytest.raises(ModelNotFoundError):
        cache.get(upcoming)

    trained = train_and_register("logistic_regression", {}, sqlite_settings)
    registry.promote(trained.model_version)

    assert trained.model_version == upcoming
    assert cache.get()[0] == upcoming  # the champion, though just remembered as missing


def test_a_champion_gone_from_the_registry_is_looked_up_again(sqlite_settings: Settings) -> None:
    """The champion a process knows may be gone from the registry: `make clean-var` gives a
    new registry whose version numbers start again, and a version can be deleted. Its next
    job asks the registry for the champion of now instead of failing with "no version N"
    until the refresh interval ends (seen on `make run`: a batch failed that way)."""
    registry = Registry(sqlite_settings)
    gone = train_and_register("logistic_regression", {}, sqlite_settings).model_version
    registry.promote(gone)
    cache = ModelCache(registry, refresh_seconds=60)
    assert cache.champion_version() == gone  # known, not yet loaded

    current = train_and_register("logistic_regression", {"C": 0.5}, sqlite_settings)
    registry.promote(current.model_version)
    registry.client.delete_model_version(registry.name, gone)

    assert cache.get()[0] == current.model_version
    with pytest.raises(ModelNotFoundError, match=f"has no version {gone}"):
        cache.get(gone)  # asked for by number, it is still refused


def test_a_registered_model_made_again_is_not_served_from_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered model deleted and registered anew (or a new registry under running
    workers) numbers its versions from 1 again: a process that had loaded the old version 1
    must not go on serving it as the new version 1."""
    sqlite_settings = sqlite_store(tmp_path, monkeypatch)  # the module's has other versions
    registry = Registry(sqlite_settings)
    clock = Clock()
    old = train_and_register("logistic_regression", {"C": 1.0}, sqlite_settings)
    registry.promote(old.model_version)
    cache = ModelCache(registry, refresh_seconds=5, clock=clock)
    version, old_estimator = cache.get()
    assert (version, _c_of(old_estimator)) == ("1", 1.0)

    registry.client.delete_registered_model(registry.name)
    new = train_and_register("logistic_regression", {"C": 0.25}, sqlite_settings)
    registry.promote(new.model_version)
    assert new.model_version == version  # the same number, another model
    clock.now += 5  # the next look at the registry

    # Asked for by number first (a caller pinned to a version): that too looks at the
    # registry once the last look is stale, so it notices.
    assert _c_of(cache.get(version)[1]) == 0.25
    assert _c_of(cache.get()[1]) == 0.25


def _c_of(estimator: object) -> float:
    params = estimator.get_params()  # type: ignore[attr-defined]
    return float(next(value for name, value in params.items() if name.endswith("__C")))


def test_versions_loaded_during_an_outage_are_checked_when_the_registry_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process started while MLflow is down serves this machine's copy of the last
    champion. The registry that answers later may be another one (a new registry numbers
    its versions from 1 again): what was loaded meanwhile is checked against it, not kept."""
    old = sqlite_store(tmp_path, monkeypatch, "old")
    trained = train_and_register("logistic_regression", {"C": 1.0}, old)
    Registry(old).promote(trained.model_version)
    ModelCache(Registry(old), refresh_seconds=5).get()  # the copy, and the last champion
    port = free_port()  # nothing listens there yet
    # The same machine (its models folder), another registry.
    settings = old.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"})
    clock = Clock()
    cache = ModelCache(Registry(settings), refresh_seconds=5, clock=clock)
    version, estimator = cache.get()
    assert (version, _c_of(estimator), cache.source) == ("1", 1.0, "last_known")

    with mlflow_server(tmp_path / "new-mlflow", tmp_path / "mlflow.log", port):
        retrained = train_and_register("logistic_regression", {"C": 0.25}, settings)
        Registry(settings).promote(retrained.model_version)
        clock.now += inference.UNREACHABLE_LOOK_SECONDS
        version, estimator = cache.get()

    assert (version, _c_of(estimator), cache.source) == ("1", 0.25, "registry")


def test_a_load_begun_before_the_model_was_made_again_serves_its_job_but_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load runs without the cache's lock. If the registered model is made again while it
    runs (another thread's look at the registry notices), what it loaded is the old
    version 1: it answers the job that asked, and the next job loads the new one."""
    sqlite_settings = sqlite_store(tmp_path, monkeypatch)
    registry = Registry(sqlite_settings)
    clock = Clock()
    old = train_and_register("logistic_regression", {"C": 1.0}, sqlite_settings)
    registry.promote(old.model_version)
    cache = ModelCache(registry, refresh_seconds=5, clock=clock)
    assert cache.champion_version() == "1"  # the alias is read, nothing is loaded yet

    load = registry.load
    loads: list[float] = []

    def made_again_while_loading(version: str) -> object:
        estimator = load(version)
        loads.append(_c_of(estimator))
        if len(loads) == 1:  # the model is made again, and a look notices, mid-load
            registry.client.delete_registered_model(registry.name)
            new = train_and_register("logistic_regression", {"C": 0.25}, sqlite_settings)
            registry.promote(new.model_version)
            cache.refresh_champion(wait=True)
        return estimator

    monkeypatch.setattr(registry, "load", made_again_while_loading)

    assert _c_of(cache.get()[1]) == 1.0  # the job that began the load gets what it loaded
    assert _c_of(cache.get()[1]) == 0.25  # not kept: the next job loads the new version 1
    assert _c_of(cache.get()[1]) == 0.25
    assert loads == [1.0, 0.25]  # and keeps that one
