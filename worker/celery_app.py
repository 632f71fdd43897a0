"""The Celery app of the workers: `celery -A worker.celery_app worker -Q predict` (or train;
the callbacks worker starts from worker.callbacks_app, which shares this app and its signals)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from celery.exceptions import TimeLimitExceeded
from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    task_failure,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

from irisq.logs import configure
from irisq.queueing import make_celery
from irisq.settings import get_settings
from irisq.tasks import (
    CALLBACKS_QUEUE,
    PREDICT_GROUP_TASK,
    PREDICT_QUEUE,
    QUEUES,
    TRAIN_QUEUE,
)
from irisq.workers import HEARTBEAT_EVERY_SECONDS, beat, forget
from worker.mlflow_env import configure_mlflow

logger = logging.getLogger(__name__)

app = make_celery(get_settings(), main="irisq-worker")
app.conf.include = ["worker.tasks", "worker.callback_task"]

# MLflow's start (8-14 s) plus a first training (~10 s), with room for a slow machine.
WARM_UP_SECONDS = 300
_stopping = threading.Event()


@setup_logging.connect
def _configure_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, so Celery leaves logging to us: the same format as the other services.
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    configure("worker", get_settings().log_format, level or logging.INFO)
    for name in ("celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).addFilter(_not_about_prediction_groups)


def _not_about_prediction_groups(record: logging.LogRecord) -> bool:
    """Drop Celery's "received" and "succeeded" lines of online predictions' tasks.

    A busy API sends hundreds a second, and these two lines cost more than scoring a row;
    worker.grouped logs one line per task naming each of its jobs, with its outcome and
    time, which says what these two would. Lines about other tasks, and a task's failure or
    retry lines, stay."""
    data = getattr(record, "data", None)
    return not (
        isinstance(data, dict)
        and data.get("name") == PREDICT_GROUP_TASK
        and record.levelno <= logging.INFO
    )


_identity: dict[str, Any] = {}


@celeryd_after_setup.connect
def _remember_identity(sender: str, instance: Any, **_: Any) -> None:
    _identity["hostname"] = sender
    _identity["queues"] = sorted(instance.app.amqp.queues.consume_from)
    _identity["processes"] = int(getattr(instance, "concurrency", 1) or 1)
    # Before the pool forks: its processes inherit the environment.
    configure_mlflow(training=TRAIN_QUEUE in _identity["queues"])


def _heartbeat_loop() -> None:
    from worker.context import redis_client

    while True:
        try:
            beat(redis_client(), _identity["queues"], _identity["hostname"], _identity["processes"])
        except Exception as exc:  # Redis away for a moment: readiness will show it
            logger.warning("heartbeat failed: %s", exc)
        if _stopping.wait(HEARTBEAT_EVERY_SECONDS):
            return


def _bootstrap_champion() -> None:
    from worker.bootstrap import ensure_champion
    from worker.context import redis_client

    try:
        ensure_champion(get_settings(), app, redis_client())
    except Exception:
        logger.exception("could not make sure a champion exists")


def _reconcile_loop() -> None:
    from worker.context import job_store
    from worker.reconciler import Reconciler

    Reconciler(get_settings(), app, job_store()).loop(_stopping)


def _drain_prediction_log_loop() -> None:
    from worker.context import redis_client
    from worker.prediction_log_drain import Drain

    Drain(redis_client(), get_settings()).loop(_stopping)


def _dispatch_callbacks_loop() -> None:
    from worker.callbacks import dispatch_loop
    from worker.context import redis_client

    dispatch_loop(redis_client(), app, get_settings(), _stopping)


def _freeze_what_exists() -> None:
    """Hide the objects that live as long as the process from the garbage collector.

    A full collection scans every tracked object: with Celery, kombu and (in pool
    processes) MLflow and scikit-learn loaded, that stopped a process for 40-250 ms at a
    time under load (measured), which every job queued behind it waited out.
    """
    gc.collect()
    gc.freeze()


@worker_ready.connect
def _on_ready(**_: Any) -> None:
    _freeze_what_exists()  # the main process, which hands every task to the pool
    # Threads start here, in the main process after the pool has forked, never in children.
    threading.Thread(target=_heartbeat_loop, name="irisq-heartbeat", daemon=True).start()
    queues = _identity.get("queues", [])
    # Workers of the job queues reconcile jobs; the callbacks worker only delivers (and
    # never loads the ML modules the reconciler brings).
    if set(queues) & set(QUEUES):
        threading.Thread(target=_reconcile_loop, name="irisq-reconciler", daemon=True).start()
    # Train workers keep the prediction log's files: with one train host, no folder need be
    # shared for them (and drift, computed where they are).
    if TRAIN_QUEUE in queues:
        threading.Thread(
            target=_drain_prediction_log_loop, name="irisq-prediction-log", daemon=True
        ).start()
    if CALLBACKS_QUEUE in queues:
        threading.Thread(
            target=_dispatch_callbacks_loop, name="irisq-callbacks", daemon=True
        ).start()
    if TRAIN_QUEUE in queues and get_settings().bootstrap_champion:
        threading.Thread(target=_bootstrap_champion, name="irisq-bootstrap", daemon=True).start()


def _warm_model_cache() -> None:
    """Load the champion; on a fresh stack keep trying while the first one is trained."""
    from worker.context import model_cache

    deadline = time.monotonic() + WARM_UP_SECONDS
    while True:
        try:
            version, _ = model_cache().get()
        except Exception as exc:  # no champion yet, or MLflow still starting
            if time.monotonic() > deadline:
                logger.info("champion not preloaded (%s); the first job will load it", exc)
                return
            time.sleep(2)
        else:
            logger.info("champion version %s loaded", version)
            _freeze_what_exists()  # with the model and MLflow's modules now loaded
            return


@worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    # Each pool process loads the champion in the background as it starts, so the first
    # prediction does not pay for the download (measured: ~3-5 s on a cold process).
    if PREDICT_QUEUE in _identity.get("queues", []):
        threading.Thread(target=_warm_model_cache, name="irisq-warm", daemon=True).start()


@task_failure.connect
def _on_hard_time_limit(task_id: str | None = None, exception: Any = None, **_: Any) -> None:
    # The hard limit kills the pool process, so the job cannot record its own end: the
    # main process, which sends this signal, does it for it.
    if not isinstance(exception, TimeLimitExceeded) or task_id is None:
        return
    from worker.context import job_store
    from worker.part_tasks import job_of_task

    try:
        job_store().fail(
            job_of_task(task_id),  # a batch's part fails its batch
            "time_limit",
            f"the job ran past its hard time limit ({exception.args[0]} s) and was stopped",
        )
    except Exception as exc:  # the reconciler's stale-attempt check is the backstop
        logger.warning("could not record the time limit of job %s: %s", task_id, exc)


@worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    _stopping.set()
    if "hostname" in _identity:
        from worker.context import redis_client

        try:
            forget(redis_client(), _identity["queues"], _identity["hostname"])
        except Exception as exc:
            logger.warning("could not remove heartbeat: %s", exc)
