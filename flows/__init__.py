"""Orchestration: Prefect flows, the thin Prefect tasks around stages and actors, and the CLI."""

import os

# Prefect reads its settings when first imported: keep a command-line run quiet and offline-safe
# (no analytics calls from a machine that may have no internet). The user's environment wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
