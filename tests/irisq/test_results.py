"""Large prediction results in files: the species that `/invocations` answers are read by a
scan, and anything the scan does not expect is validated whole."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from irisq.batch_storage import LocalStorage
from irisq.batches import RESULT_JSON
from irisq.job_types import PredictionResult
from irisq.results import ResultFiles

SPECIES = ["virginica", "setosa", "versicolor", "setosa"]


def _stored(tmp_path: Path, species: list[str]) -> tuple[ResultFiles, str]:
    files, job_id = ResultFiles(LocalStorage(tmp_path), inline_max_bytes=10), str(uuid.uuid4())
    probabilities = {"setosa": 0.2, "versicolor": 0.3, "virginica": 0.5}
    result = PredictionResult.model_validate(
        {
            "model_version": "3",
            "model_source": "registry",
            "predictions": [{"species": s, "probabilities": probabilities} for s in species],
        }
    )
    files.place(job_id, result.model_dump_json())
    return files, job_id


def test_the_species_of_a_result_file_in_order(tmp_path: Path) -> None:
    files, job_id = _stored(tmp_path, SPECIES * 2500)

    assert files.species(job_id, 10_000) == SPECIES * 2500
    assert files.species(str(uuid.uuid4()), 1) is None  # no such file


def test_a_file_the_scan_does_not_expect_is_validated_whole(tmp_path: Path) -> None:
    files, job_id = _stored(tmp_path, SPECIES)
    path = tmp_path / job_id / RESULT_JSON

    assert files.species(job_id, 3) == SPECIES  # a count that differs: the slow path agrees

    path.write_bytes(path.read_bytes().replace(b'"species":"setosa"', b'"species":"rosa"', 1))
    with pytest.raises(ValidationError):
        files.species(job_id, 4)
