"""Where a large batch's parts stand, in Redis (worker.batch_parts): its plan, the parts
not yet queued, each part's outcome, tries and rows read. Keys live as long as job records.

What Redis gives back is checked as what the queue gives: a plan that does not parse is no
plan, and a part index is used only when the plan has that part.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

SKIPPED = {"skipped": True}  # a part never queued: the batch failed or ended first

_RECORD = """
local added = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then
  local first = redis.call('GET', KEYS[2])
  if not first or tonumber(first) > tonumber(ARGV[1]) then
    redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {added, redis.call('HLEN', KEYS[1])}
"""

_SKIP_REST = """
local left = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
for _, index in ipairs(left) do
  redis.call('HSETNX', KEYS[2], index, ARGV[1])
end
return redis.call('HLEN', KEYS[2])
"""


@dataclass(frozen=True)
class Part:
    """Bytes `start` to `stop` of the upload: whole records, the first on line `line`."""

    index: int
    start: int
    stop: int
    line: int


@dataclass(frozen=True)
class Plan:
    """How a batch is scored in parts; fixed by its first batch task."""

    version: str  # every part is scored by this model version
    model_source: str
    skip_invalid: bool
    rows_total: int
    started: float  # epoch seconds: the job's time, for its metric
    parts: tuple[Part, ...]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "parts": [list(asdict(p).values()) for p in self.parts]})

    @classmethod
    def from_json(cls, text: bytes | str | None) -> Plan | None:
        if text is None:
            return None
        try:
            data = json.loads(text)
            parts = tuple(Part(*(int(v) for v in values)) for values in data["parts"])
            if [p.index for p in parts] != list(range(len(parts))) or not parts:
                return None
            return cls(
                str(data["version"]),
                str(data["model_source"]),
                bool(data["skip_invalid"]),
                int(data["rows_total"]),
                float(data["started"]),
                parts,
            )
        except (ValueError, KeyError, TypeError):
            return None


class PartLedger:
    def __init__(self, client: redis.Redis, job_id: str, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl = ttl_seconds
        base = f"irisq:batch:{job_id}"
        self.plan_key, self.todo_key = f"{base}:plan", f"{base}:todo"
        self.done_key, self.rows_key = f"{base}:done", f"{base}:rows"
        self.tries_key, self.failed_key = f"{base}:tries", f"{base}:failed-from"
        self.finishing_key = f"{base}:finishing"
        self.sizes_key = f"{base}:sizes"
        self._record = client.register_script(_RECORD)
        self._skip_rest = client.register_script(_SKIP_REST)

    def begin(self, plan: Plan) -> Plan | None:
        """Keep `plan` unless the batch has one (a second delivery): the one kept."""
        if self.redis.set(self.plan_key, plan.to_json(), nx=True, ex=self.ttl):
            with self.redis.pipeline() as pipe:
                pipe.delete(self.todo_key)
                pipe.rpush(self.todo_key, *(p.index for p in plan.parts))
                pipe.expire(self.todo_key, self.ttl)
                pipe.execute()
            return plan
        return self.plan()

    def plan(self) -> Plan | None:
        return Plan.from_json(self.redis.get(self.plan_key))

    def requeue_missing(self, plan: Plan) -> list[int]:
        """Put every part without an outcome back in line (their tasks are lost); which."""
        done = {int(i) for i in self.redis.hkeys(self.done_key)}
        missing = [p.index for p in plan.parts if p.index not in done]
        with self.redis.pipeline() as pipe:
            pipe.delete(self.todo_key)
            if missing:
                pipe.rpush(self.todo_key, *missing)
                pipe.expire(self.todo_key, self.ttl)
            pipe.execute()
        return missing

    def take_next(self) -> int | None:
        """The next part to queue, None when all are."""
        index: Any = self.redis.lpop(self.todo_key)
        return None if index is None else int(index)

    def count_try(self, index: int) -> int:
        """This delivery's number among the part's tries."""
        with self.redis.pipeline() as pipe:
            pipe.hincrby(self.tries_key, str(index), 1)
            pipe.expire(self.tries_key, self.ttl)
            tries, _ = pipe.execute()
        return int(tries)

    def record(self, index: int, outcome: dict[str, Any]) -> int:
        """Keep the part's outcome (the first one recorded stays); how many parts have one."""
        failed = "1" if "error" in outcome else "0"
        _, count = self._record(
            keys=[self.done_key, self.failed_key],
            args=[index, json.dumps(outcome), failed, self.ttl],
        )
        return int(count)

    def skip_rest(self) -> int:
        """Parts not yet queued get no task (the batch failed or ended): how many parts have
        an outcome now."""
        return int(self._skip_rest(keys=[self.todo_key, self.done_key], args=[json.dumps(SKIPPED)]))

    def outcomes(self) -> dict[int, dict[str, Any]]:
        return {int(i): json.loads(v) for i, v in self.redis.hgetall(self.done_key).items()}

    def report_rows(self, index: int, rows: int) -> tuple[int, int | None]:
        """Record the rows the part has read: (rows read by all parts, the first failed
        part's index or None)."""
        with self.redis.pipeline() as pipe:
            pipe.hset(self.rows_key, str(index), rows)
            pipe.expire(self.rows_key, self.ttl)
            pipe.hvals(self.rows_key)
            pipe.get(self.failed_key)
            _, _, counts, failed = pipe.execute()
        return sum(int(c) for c in counts), None if failed is None else int(failed)

    def set_size(self, index: int, size: int) -> None:
        """The bytes of the part's result rows: where every later part's rows start."""
        with self.redis.pipeline() as pipe:
            pipe.hset(self.sizes_key, str(index), size)
            pipe.expire(self.sizes_key, self.ttl)
            pipe.execute()

    def sizes_before(self, index: int, patience: float) -> int | None:
        """The bytes of the result rows of every part before `index`, once all are known;
        None if some are not within `patience` seconds (a part still scoring)."""
        deadline = time.monotonic() + patience
        while True:
            fields = [str(i) for i in range(index)]
            sizes: list[Any] = self.redis.hmget(self.sizes_key, fields) if fields else []
            if all(size is not None for size in sizes):
                return sum(int(size) for size in sizes)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)  # a part takes ~0.3 s: the one before is about done

    def claim_finish(self, seconds: int) -> bool:
        """One task puts the parts together; a second delivery of the last part does not."""
        return bool(self.redis.set(self.finishing_key, 1, nx=True, ex=seconds))

    def forget(self) -> None:
        self.redis.delete(
            self.plan_key,
            self.todo_key,
            self.done_key,
            self.rows_key,
            self.tries_key,
            self.failed_key,
            self.finishing_key,
            self.sizes_key,
        )
