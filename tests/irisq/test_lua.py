"""The Lua scripts as irisq.lua composes them from its package files."""

from __future__ import annotations

import pytest
import redis

from irisq import lua

SCRIPTS = {
    name: getattr(lua, name)
    for name in (
        "CREATE",
        "UPDATE_EXISTING",
        "PROGRESS",
        "START",
        "FINISH",
        "DELETE",
        "SET_STORED_BYTES",
        "REMOVE_ENDED",
        "DROP_EXPIRED",
        "REPAIR_IN_FLIGHT",
    )
}
# What workers and cancels run: these must be able to end a job when Redis is full.
MAY_RUN_OUT_OF_MEMORY = {"UPDATE_EXISTING", "PROGRESS", "START", "FINISH", "DELETE"}
# What accepts new jobs: refused whole while Redis is full (a bare `#!lua` says so; a script
# without it would fail at its first write, after its reads).
REFUSED_WHEN_FULL = {"CREATE"}


def test_every_script_compiles_in_redis(redis_client: redis.Redis) -> None:
    for name, script in SCRIPTS.items():
        sha = redis_client.script_load(script)
        assert redis_client.script_exists(sha) == [True], name


def test_the_allow_oom_flag_is_the_first_line_of_those_that_need_it() -> None:
    for name, script in SCRIPTS.items():
        assert script.startswith(lua.ALLOW_OOM) is (name in MAY_RUN_OUT_OF_MEMORY), name
        flagged = name in MAY_RUN_OUT_OF_MEMORY | REFUSED_WHEN_FULL
        assert script.count("#!lua") == int(flagged), name
        assert script.startswith("#!lua\n") is (name in REFUSED_WHEN_FULL), name


def test_constants_are_filled_in_and_comments_left_out() -> None:
    for name, script in SCRIPTS.items():
        assert "$" not in script, name
        assert not [line for line in script.splitlines() if line.startswith("--")], name
    assert "'irisq:jobs:done'" in lua.DELETE
    assert "'irisq:owner:' .. owner" in lua.DELETE


def test_a_constant_that_is_not_plain_text_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain Lua string"):
        lua._literal("it's")
