"""The contract names every algorithm once: what training accepts is what the pages offer."""

from __future__ import annotations

from typing import get_args

from irisq.algorithms import ALGORITHM_TITLES, PARAMS_BY_ALGORITHM, Algorithm


def test_every_algorithm_has_a_title_and_its_parameters() -> None:
    algorithms = set(get_args(Algorithm))

    assert set(ALGORITHM_TITLES) == algorithms
    assert set(PARAMS_BY_ALGORITHM) == algorithms
    assert len(set(ALGORITHM_TITLES.values())) == len(algorithms)
