"""Where the job store keeps things in Redis: the keys, indexes and channels that both the
Python code and the Lua scripts (irisq.lua, which writes these values into their text) name.

irisq.jobs and irisq.quotas re-export them for the code that imports them from there.
"""

from __future__ import annotations

KEY_PREFIX = "irisq:job:"  # + job id: the job's record, one hash
QUEUED_INDEX = "irisq:jobs:queued"  # job id → when it was queued (epoch seconds)
RUNNING_INDEX = "irisq:jobs:running"  # job id → when its current attempt started
# Every job whose record is kept, by creation time: what an admin lists (irisq.listing).
# Each owner's own jobs are in its `jobs` set (irisq.quotas). The reconciler drops entries
# whose records expired (worker.retention), deleting a job drops its entry.
ALL_JOBS_INDEX = "irisq:jobs:all"

# Every job that ends is announced here, so waiting requests need not poll: with its whole
# record, unless that is larger than this (then its id alone).
DONE_CHANNEL = "irisq:jobs:done"
ANNOUNCED_RECORD_MAX_BYTES = 64 * 1024

# Each running batch or training's progress, as a capped stream per job (the events that
# `GET /v1/jobs/{id}/events` replays from a Last-Event-ID), announced on PROGRESS_CHANNEL
# by job id. Predictions write none: they only start and end.
EVENTS_PREFIX = "irisq:events:"
PROGRESS_CHANNEL = "irisq:jobs:progress"
EVENTS_KEPT = 200  # per job: a batch reports ~1 per 65,536 rows, a training ~6 stages

# Jobs whose final status awaits delivery to their callback_url, by when to try next
# (worker.callbacks delivers them; the job's `callback` field says how it went).
CALLBACKS_DUE = "irisq:callbacks:due"

# What each API key holds (irisq.quotas): OWNER_PREFIX + owner + `:inflight`, `:usage`,
# `:files` or `:jobs`; every owner that has such keys is in OWNERS.
OWNERS = "irisq:owners"
OWNER_PREFIX = "irisq:owner:"
