"""Ray: connect (or start a loopback-only local instance) and run the model workers.

Workers are named actors, so a driver that submits many shards reuses the loaded models, and
restart on failure. They never open the catalog: they return outcomes and the driver records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ray

from config.settings import Settings
from flows.actors import ScanWorker
from tasks.records.types import ScanJob, ScanOutcome

NAMESPACE = "restorium"


def connect(settings: Settings) -> None:
    if ray.is_initialized():
        return
    # Workers import the project from the installed environment; their errors come back as
    # exceptions or outcomes, so their log lines are not copied to the driver's terminal.
    common: dict[str, Any] = dict(namespace=NAMESPACE, logging_level=logging.ERROR, log_to_driver=False)
    if settings.ray_address:
        ray.init(address=settings.ray_address, **common)
    else:
        # "local" always starts a private instance (never silently joins a cluster found on
        # the machine), bound to loopback: Ray listens on every interface otherwise.
        ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                 num_cpus=os.cpu_count(), **common)


def shutdown() -> None:
    if ray.is_initialized():
        ray.shutdown()


def use_cuda(settings: Settings) -> bool:
    if settings.device == "cpu":
        return False
    gpus = ray.cluster_resources().get("GPU", 0)
    if settings.device == "cuda" and not gpus:
        raise RuntimeError("RESTORIUM_DEVICE=cuda but the Ray cluster has no GPU")
    return gpus > 0


@dataclass
class WorkerPool:
    actors: list
    cpus: float = 0.0  # CPUs the workers were given (for the run report's utilisation)
    baseline: list[dict] = field(default_factory=list)  # the workers' counters when this run took them
    in_flight: int = 1  # scans handed to each worker at once (its max_concurrency)

    def map(self, jobs: Iterable[ScanJob]) -> Iterator[ScanOutcome]:
        """Outcomes as they finish (not in job order), spread over every worker, `in_flight` scans
        at a time on each: while one scan is in the model, the next is decoded and checked and the
        last one written (ray.util.ActorPool keeps one task per actor)."""
        queue = list(jobs)[::-1]
        slots = [actor for _ in range(self.in_flight) for actor in self.actors]
        pending: dict[Any, Any] = {}
        while queue or pending:
            while queue and slots:
                actor = slots.pop(0)
                pending[actor.process.remote(queue.pop())] = actor
            done, _ = ray.wait(list(pending), num_returns=1)
            slots.append(pending.pop(done[0]))
            yield ray.get(done[0])

    def describe(self) -> list[dict]:
        return ray.get([a.describe.remote() for a in self.actors])

    def run_counters(self) -> list[dict]:
        """What each worker did for this run: named actors outlive a run (a later run in the same
        Ray session reuses them), so their counters are taken relative to the run's start; a
        restarted actor (another pid) started again from zero."""
        now = self.describe()
        for current, before in zip(now, self.baseline):
            if current["pid"] == before["pid"]:
                for key in ("processed", "busy_seconds", "cpu_seconds"):
                    current[key] = round(current[key] - before[key], 3)
        return now


def start_workers(
    settings: Settings, upscale_models: list[str], denoiser_model: str | None, weights: dict[str, str],
    face_model: str | None = None, precision: str = "fp32", damage_model: str | None = None,
) -> WorkerPool:
    """Start (or reuse) the named model workers; returns once every model is loaded."""
    cuda = use_cuda(settings)
    cpus = ray.cluster_resources().get("CPU", 1)
    threads = settings.worker_threads or max(1, int(cpus // settings.workers))
    resources = {"num_gpus": settings.gpus_per_worker, "num_cpus": 1} if cuda else {"num_cpus": threads}
    # Named actors outlive a run: one loaded with other weights, precision or tile is another worker.
    key = "-".join(sorted(f"{k}:{v[:8]}" for k, v in weights.items())) + f"-{precision}-t{settings.tile}-f{settings.scans_in_flight}"
    actors = []
    for index in range(settings.workers):
        actor = ray.remote(ScanWorker).options(
            # A worker that dies is restarted and its scan retried (twice at most): masters are
            # written atomically and recorded by the driver, so a retry cannot duplicate anything.
            name=f"scan-worker-{index}-{key}", get_if_exists=True, max_restarts=2, max_task_retries=2,
            max_concurrency=settings.scans_in_flight, **resources,
        ).remote(
            str(settings.models_dir), "cuda" if cuda else "cpu", upscale_models, denoiser_model,
            weights, None if cuda else threads, face_model, precision, settings.tile, damage_model,
        )
        actors.append(actor)
    pool = WorkerPool(actors, cpus=float(settings.workers * (1 if cuda else threads)),
                      in_flight=settings.scans_in_flight)
    pool.baseline = pool.describe()  # also surfaces a load failure (missing or mismatched weights) now
    return pool
