"""Celery task and queue names: the API sends tasks by these names, the worker registers them."""

from typing import Final

PREDICT_QUEUE: Final = "predict"
TRAIN_QUEUE: Final = "train"
# The queues that carry jobs: readiness, metrics and the reconciler look at these.
QUEUES: Final = (PREDICT_QUEUE, TRAIN_QUEUE)
# Deliveries of finished jobs to their callback_url, by a worker of their own (threads):
# a slow receiver never holds a prediction or training slot. Not a job queue: its tasks
# carry no job of their own to reconcile (worker.callbacks re-sends what is lost).
CALLBACKS_QUEUE: Final = "callbacks"
# Every queue a worker may consume, and so send heartbeats for.
WORKER_QUEUES: Final = (*QUEUES, CALLBACKS_QUEUE)

PREDICT_TASK: Final = "irisq.predict"
# Several prediction jobs in one task: the API's micro-batches (api/batching.py).
PREDICT_GROUP_TASK: Final = "irisq.predict_group"
TRAIN_TASK: Final = "irisq.train"
BATCH_TASK: Final = "irisq.batch"
# One part of a large batch (worker.batch_parts): [job id, part index].
BATCH_PART_TASK: Final = "irisq.batch_part"
DELIVER_CALLBACK_TASK: Final = "irisq.deliver_callback"
# A drift report of the prediction log ([since, until] as ISO times): no job record, the
# report is left in Redis for the API (irisq.drift). Where the log's files are: train.
DRIFT_TASK: Final = "irisq.drift"

# Where each task goes: training is slow and must never sit in front of predictions.
TASK_QUEUES: Final = {
    PREDICT_TASK: PREDICT_QUEUE,
    PREDICT_GROUP_TASK: PREDICT_QUEUE,
    BATCH_TASK: PREDICT_QUEUE,
    BATCH_PART_TASK: PREDICT_QUEUE,
    TRAIN_TASK: TRAIN_QUEUE,
    DRIFT_TASK: TRAIN_QUEUE,
    DELIVER_CALLBACK_TASK: CALLBACKS_QUEUE,
}
