"""The Celery task that makes one delivery attempt (worker.callbacks has the logic).

Registered by every worker (worker.celery_app includes it), so whichever consumes the
`callbacks` queue can run it; the callbacks worker (worker.callbacks_app) registers it alone.
"""

from __future__ import annotations

from irisq.settings import get_settings
from irisq.tasks import DELIVER_CALLBACK_TASK
from worker import callbacks
from worker.celery_app import app
from worker.context import job_store, result_files


@app.task(name=DELIVER_CALLBACK_TASK)
def deliver_callback(job_id: str, claim: str) -> None:
    """One attempt at POSTing the end of `job_id` to its callback_url (`claim`: see
    worker.callbacks)."""
    callbacks.deliver(job_store(), result_files(), get_settings(), job_id, claim)
