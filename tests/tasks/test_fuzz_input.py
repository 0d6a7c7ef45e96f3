"""Fuzzing ingest + decode + QA: mutated TIFF/PNG/JPEG files must never escape the boundary.

Bounded (count and seconds) and seeded; bench/fuzz_input.py is the long run of the same loop.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import fuzz_input
import hostile_corpus

from tasks.files.limits import Limits

pytestmark = pytest.mark.slow


def test_mutated_scans_never_escape_ingest_decode_or_qa(tmp_path, caplog, monkeypatch):
    # tifffile's complaints about thousands of broken tags are not what this test reads; restored after
    monkeypatch.setattr(logging.getLogger("tifffile"), "level", logging.CRITICAL)
    seeds = hostile_corpus.seeds(fuzz_input.photo())
    names = sorted(seeds)
    rng = np.random.default_rng(20261205)
    limits = Limits(20_000_000, 160_000_000)
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(1500):
        if time.perf_counter() - started > 120:
            break
        name = names[int(rng.integers(0, len(names)))]
        _, data = hostile_corpus.mutate(seeds[name], rng)
        path = tmp_path / f"f{i}{hostile_corpus.SUFFIX[name]}"
        path.write_bytes(data)
        result = fuzz_input.fuzz_one(path, limits)  # raises only when something escaped
        outcomes[result] = outcomes.get(result, 0) + 1
        path.unlink()
    tried = sum(outcomes.values())
    assert tried >= 300, f"only {tried} files in the time bound"
    # the mutations must exercise both sides: files refused with a reason, and files that still read
    assert outcomes.get("ok", 0) > 0 and outcomes.get("invalid", 0) > 0, outcomes
