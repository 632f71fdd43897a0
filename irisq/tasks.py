"""Celery task and queue names: the API sends tasks by these names, the worker registers them."""

from typing import Final

PREDICT_QUEUE: Final = "predict"
TRAIN_QUEUE: Final = "train"
QUEUES: Final = (PREDICT_QUEUE, TRAIN_QUEUE)

PREDICT_TASK: Final = "irisq.predict"
# Several prediction jobs in one task: the API's micro-batches (api/batching.py).
PREDICT_GROUP_TASK: Final = "irisq.predict_group"
TRAIN_TASK: Final = "irisq.train"
BATCH_TASK: Final = "irisq.batch"

# Where each task goes: training is slow and must never sit in front of predictions.
TASK_QUEUES: Final = {
    PREDICT_TASK: PREDICT_QUEUE,
    PREDICT_GROUP_TASK: PREDICT_QUEUE,
    BATCH_TASK: PREDICT_QUEUE,
    TRAIN_TASK: TRAIN_QUEUE,
}
