"""What a job is, as every service reads it: its kind, status, error, and typed result.

Workers build the result of each kind of job with these models, the job store keeps it as
their JSON, and the API, the frontend and generated clients read it back with the same
models: `Job.result` is a union told apart by `kind` (also in the OpenAPI document).
Pure pydantic, no Redis: the frontend imports it too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from irisq.algorithms import Training

Species = Literal["setosa", "versicolor", "virginica"]
# Where the version that scored came from: the registry, or (registry away) the version the
# worker last knew as champion.
ModelSource = Literal["registry", "last_known"]


class JobKind(StrEnum):
    """What a job does."""

    PREDICTION = "prediction"
    BATCH = "batch"
    TRAINING = "training"


class JobStatus(StrEnum):
    """Where a job is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class CellProblem(BaseModel):
    """One refused line of a batch file: where it is and what is wrong with it."""

    line: int = Field(
        description="Line of the file, counted from 1 (the header line, when there is one)."
    )
    column: str | None = Field(description="The column, or null when the whole row is bad.")
    value: str | None = Field(description="The cell as written (at most 40 characters).")
    message: str


class JobError(BaseModel):
    """Why a job failed, in words a person can act on."""

    type: str
    message: str
    details: list[CellProblem] | None = Field(
        None, description="Itemised problems: the first bad cells of a refused CSV."
    )


class _Result(BaseModel):
    """Unknown fields are ignored, not refused: a newer worker may add to a result that an API
    (or a client) of the previous release still reads. Every field is always sent, so the
    OpenAPI document lists each as required (a generated client's types say so too)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class SpeciesProbabilities(_Result):
    """The probability of each species; they add up to 1 (rounded to 6 places)."""

    setosa: float
    versicolor: float
    virginica: float


class RowPrediction(_Result):
    """The predicted species of one row, and how sure the model is."""

    species: Species
    probabilities: SpeciesProbabilities


class PredictionResult(_Result):
    """The species of each submitted row, in order, and the model version that scored them."""

    kind: Literal["prediction"] = "prediction"
    model_version: str
    model_source: ModelSource
    predictions: list[RowPrediction]


class SpeciesCounts(_Result):
    """Rows predicted as each species."""

    setosa: int = 0
    versicolor: int = 0
    virginica: int = 0


class FeatureColumns(_Result):
    """Which column of the file held each measurement."""

    sepal_length: str
    sepal_width: str
    petal_length: str
    petal_width: str


class BatchResult(_Result):
    """The summary of a scored CSV file; the rows are in its result file."""

    kind: Literal["batch"] = "batch"
    model_version: str
    model_source: ModelSource
    rows_read: int
    rows_scored: int
    rows_rejected: int
    counts: SpeciesCounts
    label_column: str | None = Field(description="The column with the true species, if any.")
    labelled_rows: int
    accuracy: float | None = Field(description="Share of labelled rows predicted right.")
    delimiter: Literal[",", ";"]
    columns: FeatureColumns
    on_invalid: Literal["reject", "skip"]
    decimal_mark: Literal[".", ","] = Field(".", description="As read, and as written back.")
    line_ending: Literal["LF", "CRLF"] = Field("LF", description="As read, and as written back.")
    bom: bool = Field(False, description="The file began with a UTF-8 byte order mark.")
    header: bool = Field(True, description="False for a file without a header line (UCI's).")


class ConfusionMatrix(_Result):
    """Rows: the true species; columns: the predicted one (both in `labels` order)."""

    labels: list[Species]
    matrix: list[list[int]]


class PreviousChampion(_Result):
    """The champion the new version was compared with."""

    version: str
    accuracy: float


class TrainingResult(_Result):
    """A trained, registered version, its test metrics, and what the champion gate decided."""

    kind: Literal["training"] = "training"
    run_id: str
    experiment_id: str
    model_version: str
    training: Training = Field(description="The algorithm and every hyperparameter used.")
    metrics: dict[str, float] = Field(
        description="`accuracy`, `f1_macro`, and `precision_<species>`, `recall_<species>`."
    )
    confusion_matrix: ConfusionMatrix
    promoted: bool = Field(description="Whether the new version became the champion.")
    as_challenger: bool = Field(
        False,
        description="Registered as the challenger (shadow-scored beside the champion) instead "
        "of being offered to the gate.",
    )
    reason: str = Field(description="Why the gate promoted it or not.")
    previous_champion: PreviousChampion | None
    export: str = Field(description="The local model file's name under `models/`.")
    run_url: str = Field(description="The run in the MLflow UI.")


JobResult = Annotated[PredictionResult | BatchResult | TrainingResult, Field(discriminator="kind")]
# Reads a result on its own (from its file, or a job's JSON in the frontend).
RESULT: TypeAdapter[JobResult] = TypeAdapter(JobResult)


CallbackDelivery = Literal["pending", "delivered", "failed"]


class CallbackState(_Result):
    """Where the delivery of a job's final status to its `callback_url` stands."""

    state: CallbackDelivery = Field(
        description="`pending` until a 2xx answer (`delivered`) or until retries run out or "
        "the receiver refused it with a 4xx (`failed`)."
    )
    attempts: int = Field(0, description="POSTs made so far.")
    last_status: int | None = Field(
        None, description="The HTTP status of the last attempt; null if none answered."
    )
    last_error: str | None = Field(None, description="Why the last attempt did not deliver.")
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = Field(None, description="When it is tried again.")


class JobSummary(_Result):
    """A job without its result, as `GET /v1/jobs` lists it."""

    job_id: str
    kind: JobKind
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = Field(0, description="Deliveries to a worker so far (at most 3 by default).")
    owner: str | None = Field(None, description="The API key that submitted the job.")
    error: JobError | None = None
    callback_url: str | None = Field(
        None, description="Where the final status is POSTed, signed (Standard Webhooks)."
    )
    callback: CallbackState | None = Field(
        None, description="The delivery to `callback_url`, once the job has ended."
    )


# The record fields a summary reads (the listing reads no result).
SUMMARY_FIELDS = tuple(JobSummary.model_fields)


class Job(JobSummary):
    """A job as clients see it on `GET /v1/jobs/{job_id}`."""

    result: JobResult | None = Field(
        None, description="Once succeeded: the result of this kind of job (same `kind`)."
    )
    # The result lives in a file (too large for Redis): whoever serves the job reads it.
    _result_in_file: bool = PrivateAttr(False)

    @property
    def result_in_file(self) -> bool:
        return self._result_in_file
