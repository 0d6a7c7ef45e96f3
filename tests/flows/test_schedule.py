"""Schedules against a real Prefect server: the deployment exists with its schedule and
concurrency limit, and a run of it, picked up by the served runner, masters the folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow
PREFECT = str(Path(sys.executable).with_name("prefect"))


def _wait(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


@pytest.fixture
def prefect_server(tmp_path, free_port):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{port}/api/health", 90)
        yield {**env, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_scheduled_deployment_runs_the_batch(tmp_path, prefect_server, shared_data, shared_models):
    scans = tmp_path / "night"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old_w_scratch/d.png").convert("RGB").crop((0, 0, 64, 48)).save(
        scans / "scan.png")
    env = {**prefect_server, "RESTORIUM_MODELS_DIR": str(shared_models), "RESTORIUM_HOME": str(tmp_path / "archive")}
    runner = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "schedule", str(scans), "--cron", "0 1 * * *", "--name", "nightly"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deployment = _inspect(env, "restore-batch/nightly", 120)
        assert deployment["schedules"][0]["schedule"]["cron"] == "0 1 * * *"
        limit = deployment.get("global_concurrency_limit") or {}
        assert limit.get("limit") == 1, deployment  # runs never overlap
        assert deployment["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"

        started = subprocess.run([PREFECT, "deployment", "run", "restore-batch/nightly", "--watch",
                                  "--watch-timeout", "300"], env=env, capture_output=True, text=True, timeout=360)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "Completed" in started.stdout, started.stdout
        masters = list((tmp_path / "archive/masters").rglob("*.tif"))
        assert [m.name.split(".")[0] for m in masters] == ["scan"]
    finally:
        os.killpg(runner.pid, signal.SIGINT)
        try:
            runner.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)


def _inspect(env: dict, name: str, seconds: float) -> dict:
    """The deployment as the server has it (the runner registers it on start)."""
    deadline = time.monotonic() + seconds
    script = ("import asyncio, json\nfrom prefect.client.orchestration import get_client\n"
              "async def main():\n    async with get_client() as c:\n"
              f"        d = await c.read_deployment_by_name({name!r})\n"
              "        print(json.dumps(d.model_dump(mode='json')))\nasyncio.run(main())\n")
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            return json.loads(out.stdout.strip().splitlines()[-1])
        time.sleep(2)
    raise TimeoutError(f"deployment {name} was not registered within {seconds} s: {out.stderr[-2000:]}")
