"""Every prediction job's lifecycle: a group of jobs started, scored and finished together.

A lone request is a group of one. The API sends the predictions that arrive close together
as one task (api/batching); an older single-job task (queued by an earlier API, or a job's
own task that the reconciler sends again) runs here as a group of one too. Each job is
started, scored and finished under its own record, exactly as if it were alone, but each
step's Redis writes go in one round trip for the whole group (starts, results, metrics),
and the model runs once for all the rows that asked for it, while Redis applies the starts
(their outcomes are read before any result is stored). A job delivered twice keeps
the outcome stored first (the store's scripts): a later delivery drops its own.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from irisq import metrics
from irisq.job_types import JobKind
from irisq.jobs import JobStore, ResultFile, StartOutcome
from irisq.logs import job_context
from irisq.results import ResultFiles
from worker import prediction_log
from worker.inference import ModelCache, PredictedJob, ScoredGroup, predict_jobs
from worker.jobs import EXPECTED_ERRORS, expected_error, internal_error, valid_job_id
from worker.scored import ScoredRows
from worker.shadow import ShadowScorer

logger = logging.getLogger(__name__)

STARTED = StartOutcome.STARTED
# Job id, rows (from the message: not trusted until scored), model reference.
Member = tuple[str, Any, str]
# The (job id, rows) of one model call, and what it scored.
Scored = tuple[list[tuple[str, int]], ScoredGroup]


@dataclass
class _Ends:
    """How the group's jobs ended, for the job metrics: written once for the whole group."""

    # (status, model version) → jobs; the version only for stored results ("dropped": another
    # delivery had ended the job first).
    jobs: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    species: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    gave_up: int = 0  # delivered too many times: failed without running

    def succeeded(self, result: PredictedJob) -> None:
        self.jobs["succeeded", result.model_version] += 1
        self.species[result.model_version].update(result.rows.species_counts())


def run_group(
    store: JobStore,
    cache: ModelCache,
    results_files: ResultFiles,
    members: Sequence[Any],
    shadow: ShadowScorer | None = None,
    redelivered: bool = False,
) -> None:
    """Start, score and finish each `[job id, rows, model]` of a task's `members`; once
    their results are stored, the rows go to the prediction log (with the job metrics, in
    one round trip) and the champion's to the challenger (`shadow`): neither delays an
    answer.

    A `redelivered` message (its worker was killed holding it) has its starts read before
    anything is scored: a job that may be what killed it is scored only while its attempts
    last, so that it cannot kill worker after worker."""
    started_at = time.perf_counter()
    jobs: list[Member] = [
        (m[0], m[1], str(m[2]))
        for m in members
        if isinstance(m, list | tuple) and len(m) == 3 and valid_job_id(m[0])
    ]
    ids = [job[0] for job in jobs]
    ends = _Ends()
    handed: list[Scored] = []
    with store.send_starts(ids) as starts:
        # A first delivery is scored while Redis applies its starts (irisq.later); a
        # redelivered one only once they are known (see above).
        if redelivered:
            outcomes = dict(zip(ids, starts.replies(), strict=True))
            scored = _score(cache, [job for job in jobs if outcomes[job[0]] is STARTED], handed)
        else:
            scored = _score(cache, jobs, handed)
            outcomes = dict(zip(ids, starts.replies(), strict=True))
    _note_not_started(outcomes, ends)
    results: dict[str, PredictedJob] = {}
    for group, answers in scored:
        started = [job_id for job_id, _, _ in group if outcomes[job_id] is STARTED]
        if not started:
            continue
        if isinstance(answers, Exception):
            _fail(store, started, answers, ends)
            continue
        results.update(
            (job_id, answer)
            for (job_id, _, _), answer in zip(group, answers, strict=True)
            if outcomes[job_id] is STARTED
        )
    succeeded = _store_results(store, results_files, results, ends, started_at)
    logged = [kept for jobs, group in handed if (kept := _of(succeeded, jobs, group))]
    _record(store, ends, time.perf_counter() - started_at, logged)
    if shadow is not None:
        for _, rows in logged:  # the rows whose answers were stored by this delivery
            try:
                shadow.compare(rows)
            except Exception as exc:  # the answers are stored: nothing may undo them now
                logger.warning("could not keep rows for shadow scoring: %s", exc)


def _score(
    cache: ModelCache, jobs: list[Member], handed: list[Scored]
) -> list[tuple[list[Member], list[PredictedJob] | Exception]]:
    """Each model's jobs with their answers, or the error that stopped that model's call
    (its jobs fail once it is known which of them started); the rows and the answers of each
    call are appended to `handed`."""
    by_model: dict[str, list[Member]] = defaultdict(list)
    for job in jobs:
        by_model[job[2]].append(job)
    scored: list[tuple[list[Member], list[PredictedJob] | Exception]] = []
    for reference, group in by_model.items():

        def hand_over(answered: ScoredGroup, group: list[Member] = group) -> None:
            handed.append(([(job_id, len(rows)) for job_id, rows, _ in group], answered))

        rows_per_job = [rows for _, rows, _ in group]
        try:
            scored.append((group, predict_jobs(cache, reference, rows_per_job, hand_over)))
        except Exception as exc:
            scored.append((group, exc))
    return scored


def _note_not_started(outcomes: dict[str, StartOutcome], ends: _Ends) -> None:
    """Log the jobs this delivery may not run, and count those given up on."""
    for job_id, outcome in outcomes.items():
        if outcome is STARTED:
            continue
        with job_context(job_id):
            if outcome is StartOutcome.GAVE_UP:
                logger.error("job delivered too many times: failed without running it again")
                ends.gave_up += 1
            else:
                logger.warning("job is unknown, expired, canceled or already finished; skipping it")


def _fail(store: JobStore, job_ids: list[str], exc: Exception, ends: _Ends) -> None:
    """Fail every job of a model's share of the group with the error that stopped it."""
    expected = isinstance(exc, EXPECTED_ERRORS)
    details = getattr(exc, "details", None) if expected else None
    if expected:
        error_type, message = expected_error(exc)
    else:  # logged once, under its job when it is alone
        with job_context(job_ids[0]) if len(job_ids) == 1 else nullcontext():
            error_type, message = internal_error(exc)
    for job_id in job_ids:
        with job_context(job_id):
            if store.fail(job_id, error_type, message, details):
                ends.jobs["failed", None] += 1
                if expected:
                    logger.info("job failed: %s", message)
            else:
                ends.jobs["dropped", None] += 1
                logger.warning("job had already ended: this delivery's failed result was dropped")


def _store_results(
    store: JobStore,
    results_files: ResultFiles,
    results: dict[str, PredictedJob],
    ends: _Ends,
    started_at: float,
) -> set[str]:
    """Store every result in one round trip (a large one in a file, irisq.results); the
    ids of the jobs whose result was stored."""
    if not results:
        return set()
    placed = {
        job_id: results_files.place(job_id, result.result_json())
        for job_id, result in results.items()
    }
    stored = store.succeed_many(placed)
    succeeded: list[str] = []
    for (job_id, result), done in zip(results.items(), stored, strict=True):
        with job_context(job_id):
            if done:
                succeeded.append(job_id)
                ends.succeeded(result)
                continue
            logger.warning("job had already ended: this delivery's succeeded result was dropped")
            ends.jobs["dropped", None] += 1
            if isinstance(placed[job_id], ResultFile) and store.status(job_id) is None:
                results_files.delete(job_id)  # deleted while it ran: leave no file
    _log_succeeded(succeeded, started_at)
    return set(succeeded)


def _of(succeeded: set[str], jobs: list[tuple[str, int]], group: ScoredGroup) -> Scored | None:
    """The rows of `group` whose jobs succeeded here (a job another delivery had ended,
    or one canceled meanwhile, is not logged by this one)."""
    if all(job_id in succeeded for job_id, _ in jobs):
        return jobs, group
    keep = np.repeat([job_id in succeeded for job_id, _ in jobs], [rows for _, rows in jobs])
    if not keep.any():
        return None
    answers = ScoredRows(group.answers.best[keep], group.answers.probabilities[keep])
    kept = [(job_id, rows) for job_id, rows in jobs if job_id in succeeded]
    return kept, group._replace(features=group.features[keep], answers=answers)


def _log_succeeded(job_ids: list[str], started_at: float) -> None:
    """One line for the group's successes, naming each job (a busy API sends hundreds of
    jobs a second: a line each would cost more than scoring them)."""
    if not job_ids:
        return
    took = f"{(time.perf_counter() - started_at) * 1000:.1f} ms"
    if len(job_ids) == 1:
        with job_context(job_ids[0]):
            logger.info("job succeeded in %s", took)
    else:
        logger.info("%d jobs succeeded in %s: %s", len(job_ids), took, " ".join(job_ids))


def _record(store: JobStore, ends: _Ends, seconds: float, scored: list[Scored]) -> None:
    """The group's jobs in the job metrics and its rows in the prediction log, in one round
    trip; never fails the group."""
    if not ends.jobs and not ends.gave_up and not scored:
        return
    try:
        with store.redis.pipeline(transaction=False) as pipe:
            for jobs, group in scored:
                try:
                    prediction_log.append(pipe, "prediction", jobs, group)
                except Exception as exc:  # the log is a record: the metrics still go
                    logger.warning("could not add rows to the prediction log: %s", exc)
            if ends.gave_up:
                metrics.add_job(pipe, JobKind.PREDICTION, "failed", 0.0, {}, None, ends.gave_up)
            for (status, version), count in ends.jobs.items():
                species = dict(ends.species[version]) if version is not None else {}
                metrics.add_job(
                    pipe, JobKind.PREDICTION, status, seconds, species, version, jobs=count
                )
            pipe.execute()
    except Exception as exc:
        logger.warning("could not record job metrics: %s", exc)
