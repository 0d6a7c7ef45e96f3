"""The real `restorium review` command and a real browser, as the review tests start them.

Imported by the review tests in tests/flows (like hostile_corpus.py): one way to start the server
and wait for it, one Chromium setup, so the tests differ only in what they check.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OPENSEADRAGON = REPO / "flows/review/static/openseadragon/openseadragon.min.js"


@contextlib.contextmanager
def review_server(home: Path, port: int, log_path: Path, *args: str,
                  env: dict[str, str] | None = None) -> Iterator[str]:
    """`restorium review --port PORT --home HOME ARGS...` in a child process (output to `log_path`);
    yields its loopback URL once it accepts connections, stops it on leaving."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "review", "--port", str(port),
                                 "--home", str(home), *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                env=full_env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the review server did not start:\n" + log_path.read_text()) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium(profile: Path, *, network_log: bool = False) -> Iterator[Any]:
    """Debian's headless Chromium through the system chromedriver (skips when either it or the
    vendored OpenSeadragon is missing); `network_log` keeps Chromium's performance log."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: the browser tests need Debian's Chromium "
                    "(apt-get install -y chromium chromium-driver)")
    if not OPENSEADRAGON.exists():
        pytest.skip(f"{OPENSEADRAGON} is absent: `make install` fetches it from npm")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
