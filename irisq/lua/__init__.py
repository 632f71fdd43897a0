"""The job store's Lua scripts, read once at import from the `.lua` files beside this one.

A script that calls a shared `local function` (announce, release_in_flight...) gets that
function's file put before its body, after its `#!lua` flags line (which Redis wants
first). The key layout (irisq.store_keys) and the final statuses (irisq.job_types) are
written into the text where a file says `$NAME`, as Lua literals: string.Template, whose `$`
Lua never uses (str.format's braces are Lua's table syntax). A name the table below lacks
fails the import, never a script at run time.
"""

from __future__ import annotations

from importlib.resources import files
from string import Template

from irisq import store_keys
from irisq.job_types import FINAL_STATUSES, JobStatus

# The scripts that workers and cancels run may run even when Redis is full (Redis 7+): they
# mostly free memory (the task's copy goes), and an accepted job must always be able to end.
ALLOW_OOM = "#!lua flags=allow-oom\n"


def _literal(value: str | int | tuple[str, ...]) -> str:
    """`value` as Lua source: a quoted string, a number, or a table of strings."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "{" + ", ".join(_literal(item) for item in value) + "}"
    if any(char in value for char in "'\\\n"):  # key names never need escaping: keep it so
        raise ValueError(f"not a plain Lua string: {value!r}")
    return f"'{value}'"


_VALUES: dict[str, str | int | tuple[str, ...]] = {
    "KEY_PREFIX": store_keys.KEY_PREFIX,
    "EVENTS_PREFIX": store_keys.EVENTS_PREFIX,
    "EVENTS_KEPT": store_keys.EVENTS_KEPT,
    "ALL_JOBS_INDEX": store_keys.ALL_JOBS_INDEX,
    "DONE_CHANNEL": store_keys.DONE_CHANNEL,
    "ANNOUNCED_RECORD_MAX_BYTES": store_keys.ANNOUNCED_RECORD_MAX_BYTES,
    "PROGRESS_CHANNEL": store_keys.PROGRESS_CHANNEL,
    "CALLBACKS_DUE": store_keys.CALLBACKS_DUE,
    "OWNER_PREFIX": store_keys.OWNER_PREFIX,
    "OWNERS": store_keys.OWNERS,
    "QUEUED_INDEX": store_keys.QUEUED_INDEX,
    # In JobStatus's order, so that the text (and Redis's cached hash of it) is stable.
    "FINAL_STATUSES": tuple(status.value for status in JobStatus if status in FINAL_STATUSES),
}
CONSTANTS = {name: _literal(value) for name, value in _VALUES.items()}


def _read(name: str) -> str:
    """The file `name`.lua with its constants filled in and its comment lines left out (a
    script's text goes to Redis with every EVAL of it: one per job end)."""
    text = files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    code = [line for line in text.splitlines(keepends=True) if not line.startswith("--")]
    return Template("".join(code)).substitute(CONSTANTS)


def _script(name: str, *functions: str) -> str:
    """The script `name`, with the shared functions it calls before its body."""
    body = _read(name)
    flags = body.partition("\n")[0] + "\n" if body.startswith("#!lua") else ""
    return flags + "".join(functions) + body.removeprefix(flags)


_ANNOUNCE = _read("announce")
_SCHEDULE_CALLBACK = _read("schedule_callback")
_RELEASE_IN_FLIGHT = _read("release_in_flight")
_SET_STORED = _read("set_stored")

# irisq.jobs
CREATE = _script("create")
UPDATE_EXISTING = _script("update_existing")
PROGRESS = _script("progress")
START = _script("start", _ANNOUNCE, _SCHEDULE_CALLBACK, _RELEASE_IN_FLIGHT)
FINISH = _script("finish", _ANNOUNCE, _SCHEDULE_CALLBACK, _RELEASE_IN_FLIGHT, _SET_STORED)
DELETE = _script("delete", _RELEASE_IN_FLIGHT, _SET_STORED)
# irisq.quotas
SET_STORED_BYTES = _script("set_stored_bytes", _SET_STORED)
# worker.retention
REMOVE_ENDED = _script("remove_ended")
DROP_EXPIRED = _script("drop_expired")
REPAIR_IN_FLIGHT = _script("repair_in_flight", _RELEASE_IN_FLIGHT)
