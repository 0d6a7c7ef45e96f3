"""Orchestration: Prefect flows, the thin Prefect tasks around stages and actors, and the CLI."""

import os

# Prefect reads its settings when first imported: keep a command-line run quiet and offline-safe
# (no analytics calls from a machine that may have no internet). The user's environment wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The ephemeral API server's first start in a new PREFECT_HOME (migrations) takes 11-14 s on an idle
# 2-core machine, and Prefect gives up after 20 s: on a loaded machine a run then crashed before
# doing anything (seen in CI; reproduced with the limit at 1 s). Two minutes covers a busy night.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
