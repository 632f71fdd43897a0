"""The AWS credentials of a test's S3 server, in the test process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.object_storage import S3Endpoint


@contextmanager
def aws_credentials(endpoint: S3Endpoint, secret: str | None = None) -> Iterator[None]:
    """The AWS variables of `endpoint` in this process (an in-process API's S3 client reads
    them as any irisq process does), put back as they were at the end."""
    wanted = {
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": secret or endpoint.secret_key,
        "AWS_REGION": endpoint.region,
    }
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
