"""A micro-batch of prediction jobs: one `predict_proba` call per model, one result per job.

The API groups single predictions that arrive close together into one task (api/batching);
here each job is started, scored and finished exactly as a lone one would be, but the
Redis writes go in one round trip and the model runs once for all their rows.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from irisq import metrics
from irisq.job_types import JobKind, PredictionResult
from irisq.jobs import JobStore, ResultFile, StartOutcome
from irisq.logs import job_context
from irisq.results import ResultFiles
from worker.inference import ModelCache, score
from worker.jobs import EXPECTED_ERRORS, expected_error, internal_error, valid_job_id

logger = logging.getLogger(__name__)

Member = tuple[str, list[list[float]], str]  # job id, rows, model reference


def run_group(
    store: JobStore, cache: ModelCache, results_files: ResultFiles, members: Sequence[Any]
) -> None:
    started_at = time.perf_counter()
    jobs: list[Member] = [
        (m[0], list(m[1]), str(m[2]))
        for m in members
        if isinstance(m, list | tuple) and len(m) == 3 and valid_job_id(m[0])
    ]
    outcomes = store.start_many([job_id for job_id, _, _ in jobs])
    by_model: dict[str, list[Member]] = defaultdict(list)
    for job, outcome in zip(jobs, outcomes, strict=True):
        if outcome is StartOutcome.STARTED:
            by_model[job[2]].append(job)
        elif outcome is StartOutcome.GAVE_UP:
            with job_context(job[0]):
                logger.error("job delivered too many times: failed without running it again")
    results: dict[str, PredictionResult] = {}
    for reference, group in by_model.items():
        try:
            results.update(_score_group(cache, reference, group))
        except tuple(EXPECTED_ERRORS) as exc:
            kind_of, message = expected_error(exc)
            for job_id, _, _ in group:
                store.fail(job_id, kind_of, message)
        except Exception as exc:
            kind_of, message = internal_error(exc)
            for job_id, _, _ in group:
                store.fail(job_id, kind_of, message)
    placed: dict[str, str | ResultFile] = {
        job_id: results_files.place(job_id, result) for job_id, result in results.items()
    }
    stored = store.succeed_many(placed) if placed else []
    seconds = time.perf_counter() - started_at
    for job_id, done in zip(results, stored, strict=True):
        with job_context(job_id):
            if done:
                logger.info("job succeeded")
            else:
                logger.warning("job had already ended: this delivery's result was dropped")
                if isinstance(placed[job_id], ResultFile) and store.status(job_id) is None:
                    results_files.delete(job_id)  # deleted while it ran: leave no file
    _record(store, results, stored, seconds)


def _score_group(
    cache: ModelCache, reference: str, group: list[Member]
) -> dict[str, PredictionResult]:
    version, estimator = cache.get(reference)
    source = cache.source if reference == "champion" else "registry"
    rows = [row for _, job_rows, _ in group for row in job_rows]
    predictions = score(estimator, rows)  # one call for the whole group
    results, start = {}, 0
    for job_id, job_rows, _ in group:
        end = start + len(job_rows)
        results[job_id] = PredictionResult.model_validate(
            {
                "model_version": version,
                "model_source": source,
                "predictions": predictions[start:end],
            }
        )
        start = end
    return results


def _record(
    store: JobStore, results: dict[str, PredictionResult], stored: list[bool], seconds: float
) -> None:
    """The group's jobs in the job metrics: one set of writes per model version used."""
    jobs: dict[str, int] = defaultdict(int)  # model version → jobs whose result was stored
    species: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for result, done in zip(results.values(), stored, strict=True):
        if done:
            version = result.model_version
            jobs[version] += 1
            for prediction in result.predictions:
                species[version][prediction.species] += 1
    if not jobs:
        return
    try:
        with store.redis.pipeline(transaction=False) as pipe:
            for version, count in jobs.items():
                metrics.add_job(
                    pipe,
                    JobKind.PREDICTION,
                    "succeeded",
                    seconds,
                    species[version],
                    version,
                    jobs=count,
                )
            pipe.execute()
    except Exception as exc:
        logger.warning("could not record job metrics: %s", exc)
