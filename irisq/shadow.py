"""How a challenger compares with the champion on live traffic: what the predict workers
add after shadow-scoring a group's rows, and what `/v1/models`, `/metrics` and the Models
page read back.

One Redis hash per (champion, challenger) pair of versions, so a comparison never mixes two
champions: rows compared, rows where both named the same species, the summed absolute gap
between their probabilities (over the three species, halved: 0 when identical, 1 when they
put all their weight on different species), and the confusion of champion species against
challenger species. Writes are counters (HINCRBY), so every worker process on every host
adds to the same figures in one round trip per group. The pairs are bounded by the
registry's versions; each hash expires a month after its last write, and the index of pairs
keeps the newest MAX_PAIRS_SHOWN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import redis
from pydantic import BaseModel, Field
from redis.client import Pipeline

from irisq.jobs import as_text
from irisq.schema import SPECIES, is_version

PREFIX: Final = "irisq:shadow:"
# The pairs by when they were last compared: /metrics reads the newest ones by name (a scan
# of Redis's keys would visit every job record).
PAIRS: Final = "irisq:shadow-pairs"
KEEP_SECONDS: Final = 30 * 24 * 3600
MAX_PAIRS_SHOWN: Final = 20


class ShadowComparison(BaseModel):
    """A challenger scored beside the champion on the same live rows; clients got the
    champion's answers."""

    champion: str
    challenger: str
    rows: int = Field(description="Rows both versions scored.")
    agreement: float | None = Field(
        description="Share of those rows where both predicted the same species (null: none)."
    )
    mean_probability_gap: float | None = Field(
        description="Mean over rows of half the summed absolute difference of the two "
        "probability vectors: 0 identical, 1 entirely different (null: no rows)."
    )
    confusion: dict[str, dict[str, int]] = Field(
        description="Rows by the champion's species (outer) and the challenger's (inner)."
    )
    failures: int = Field(
        description="Times the challenger could not score the rows gathered for it (no job "
        "failed: clients had the champion's answers)."
    )


def key(champion: str, challenger: str) -> str:
    return f"{PREFIX}{champion}:{challenger}"


def add(
    pipe: Pipeline,
    champion: str,
    challenger: str,
    confusion: Sequence[Sequence[int]],
    gap_sum: float,
) -> None:
    """Queue one group's comparison on `pipe`: `confusion[i][j]` rows the champion called
    SPECIES[i] and the challenger SPECIES[j]."""
    name = key(champion, challenger)
    rows = agree = 0
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            if count:
                pipe.hincrby(name, f"c:{SPECIES[i]}:{SPECIES[j]}", int(count))
                rows += int(count)
                agree += int(count) if i == j else 0
    pipe.hincrby(name, "rows", rows)
    pipe.hincrby(name, "agree", agree)
    pipe.hincrbyfloat(name, "gap", gap_sum)
    _touch(pipe, champion, challenger)


def add_failure(pipe: Pipeline, champion: str, challenger: str) -> None:
    pipe.hincrby(key(champion, challenger), "failures", 1)
    _touch(pipe, champion, challenger)


def _touch(pipe: Pipeline, champion: str, challenger: str) -> None:
    pipe.expire(key(champion, challenger), KEEP_SECONDS)
    pipe.zadd(PAIRS, {f"{champion}:{challenger}": time.time()})
    pipe.zremrangebyrank(PAIRS, 0, -MAX_PAIRS_SHOWN - 1)


def comparison(client: redis.Redis, champion: str, challenger: str) -> ShadowComparison:
    """The figures of one pair (all zero when it was never compared)."""
    return _parse(champion, challenger, client.hgetall(key(champion, challenger)))


def comparisons(client: redis.Redis) -> list[ShadowComparison]:
    """The pairs compared most recently (at most MAX_PAIRS_SHOWN), newest first; those whose
    figures have expired are left out."""
    pairs = []
    for raw in client.zrevrange(PAIRS, 0, MAX_PAIRS_SHOWN - 1):
        found = as_text(cast(bytes, raw)).split(":")
        if len(found) == 2 and all(is_version(v) for v in found):
            pairs.append((found[0], found[1]))
    with client.pipeline(transaction=False) as pipe:
        for champion, challenger in pairs:
            pipe.hgetall(key(champion, challenger))
        found_all = pipe.execute()
    return [_parse(c, d, raw) for (c, d), raw in zip(pairs, found_all, strict=True) if raw]


def _parse(champion: str, challenger: str, raw: Mapping[Any, Any]) -> ShadowComparison:
    fields = {as_text(k): as_text(v) for k, v in raw.items()}

    def number(name: str) -> float:
        """A counter as written by `add`; anything else in Redis reads as 0, never a 500."""
        try:
            value = float(fields.get(name, 0))
        except ValueError:
            return 0.0
        return value if math.isfinite(value) and value >= 0 else 0.0

    rows = int(number("rows"))
    confusion = {
        mine: {theirs: int(number(f"c:{mine}:{theirs}")) for theirs in SPECIES} for mine in SPECIES
    }
    return ShadowComparison(
        champion=champion,
        challenger=challenger,
        rows=rows,
        agreement=round(min(number("agree") / rows, 1.0), 6) if rows else None,
        mean_probability_gap=round(min(number("gap") / rows, 1.0), 6) if rows else None,
        confusion=confusion,
        failures=int(number("failures")),
    )
