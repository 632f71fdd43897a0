"""The callbacks worker: `celery -A worker.callbacks_app worker -Q callbacks -P threads`.

The workers' Celery app and signals (logging, heartbeats, the dispatcher thread), with only
the delivery task registered: none of the ML modules are imported, so the process takes
~90 MB and is ready in about 2 s (measured; worker.tasks alone brings ~320 MB and ~9 s of
imports). Deliveries mostly wait on the network, so one process runs them on threads.
"""

from __future__ import annotations

from worker.celery_app import app

app.conf.include = ["worker.callback_task"]  # not worker.tasks, and what it imports

__all__ = ["app"]
