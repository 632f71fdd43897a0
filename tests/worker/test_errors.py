"""The errors a job may end with that are shown as they are: the domain's, not a list."""

from __future__ import annotations

import json
import subprocess
import sys

from worker.csv_reading import BatchRejectedError
from worker.errors import ExpectedJobError
from worker.registry import ModelNotFoundError, RegistryUnavailableError
from worker.trust import UntrustedModelError


def test_each_domain_error_is_expected_and_names_its_own_type() -> None:
    domain = (BatchRejectedError, ModelNotFoundError, RegistryUnavailableError, UntrustedModelError)
    types = {error.error_type for error in domain}

    assert all(issubclass(error, ExpectedJobError) for error in domain)
    assert len(types) == len(domain)
    assert ExpectedJobError.error_type not in types


def test_running_jobs_needs_neither_the_csv_reader_nor_the_registry() -> None:
    """worker.jobs catches the base class: the domains' modules are not its imports."""
    probe = "import sys, json, worker.jobs; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", probe], timeout=60))

    assert not {"worker.csv_reading", "worker.registry", "worker.trust"} & set(loaded)
