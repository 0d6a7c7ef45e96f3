"""Flow tests run the real flow in-process: Prefect's test harness (a temporary local API) and
a local Ray instance, started once per module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def prefect_and_ray():
    from prefect.testing.utilities import prefect_test_harness

    from flows.workers import shutdown

    with prefect_test_harness(server_startup_timeout=120):  # 30 s is overrun on a busy 2-core machine
        yield
    shutdown()
