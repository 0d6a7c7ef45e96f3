"""The worker that keeps models loaded on one device and masters scans with them.

A plain class: flows/workers.py turns it into a Ray actor (resources, restarts, names). It loads
every model once in __init__ and reuses them for every scan of every shard. `build_toolkit` is the
same loading without Ray, for `restorium reproduce`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from models.agents import host_agent, software_agent
from tasks.records.types import AgentInfo, ScanJob, ScanOutcome


class WeightsMismatchError(RuntimeError):
    pass


def model_details(weights: Any) -> dict[str, str]:
    """Facts about a model's weights file for its agent: the licence from its card (an imported
    file's own licence is not known to us) and whether the bytes are the publisher's."""
    from models.cards import CARDS

    card = weights.card
    imported = card.name not in CARDS
    published = weights.matches_published
    return {
        "licence": f"unknown (imported weights with the architecture of {card.architecture})" if imported
        else card.licence,
        "matches_published": "unknown" if published is None else ("yes" if published else "no"),
    }


class CreditedModel:
    """A loaded model whose provenance agent carries its card's facts; otherwise the model itself
    (attribute reads go through, so timings like last_inference_seconds stay live)."""

    def __init__(self, model: Any, details: dict[str, str]) -> None:
        self._model = model
        base = model.agent
        self.agent = AgentInfo(kind=base.kind, name=base.name, version=base.version,
                               architecture=base.architecture, weights_sha256=base.weights_sha256,
                               details={**base.details, **details})

    def __getattr__(self, name: str) -> Any:
        if name == "_model":  # not set yet (e.g. while unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)


def build_toolkit(
    models_dir: str | Path, device: str, upscale_models: list[str], denoiser_model: str | None,
    face_model: str | None = None, threads: int | None = None, precision: str = "fp32",
    tile: int | None = None, damage_model: str | None = None,
) -> tuple[Any, dict[str, str]]:
    """Load the models a recipe needs → (tasks.steps.pipeline.Toolkit, model name → weights sha256).

    precision: resolved already (models.precision), the same for every model; tile: None = per device."""
    from models.loading import select_device, set_threads
    from models.upscaler import Denoiser, Upscaler
    from models.weights import resolve
    from tasks.steps.pipeline import Toolkit

    if threads:
        set_threads(threads)
    chosen = str(select_device(device))
    folder = Path(models_dir)
    loaded: dict[str, str] = {}
    upscalers = {}
    for name in upscale_models:
        weights = resolve(name, folder)
        upscalers[name] = CreditedModel(Upscaler(weights, device=chosen, precision=precision, tile=tile),
                                        model_details(weights))
        loaded[name] = weights.sha256
    denoiser = None
    if denoiser_model:
        weights = resolve(denoiser_model, folder)
        denoiser = CreditedModel(Denoiser(weights, device=chosen, precision=precision), model_details(weights))
        loaded[denoiser_model] = weights.sha256
    faces = None
    if face_model:
        from models.faces import FaceDetector

        weights = resolve(face_model, folder)
        # A low floor here: the recipe's own threshold filters what the pipeline uses.
        detector = FaceDetector(weights.path, score_threshold=0.5, name=face_model)
        faces = CreditedModel(detector, model_details(weights))
        loaded[face_model] = weights.sha256
    damage = None
    if damage_model:
        from models.damage import DamageDetector

        weights = resolve(damage_model, folder)
        damage = CreditedModel(DamageDetector(weights, device=chosen, precision=precision), model_details(weights))
        loaded[damage_model] = weights.sha256
    kit = Toolkit(upscalers=upscalers, denoiser=denoiser, faces=faces, damage=damage, software=software_agent(),
                  host=host_agent(chosen))
    return kit, loaded


class ScanWorker:
    def __init__(
        self, models_dir: str, device: str, upscale_models: list[str], denoiser_model: str | None,
        expected_weights: dict[str, str], threads: int | None = None, face_model: str | None = None,
        precision: str = "fp32", tile: int | None = None, damage_model: str | None = None,
    ):
        self.kit, loaded = build_toolkit(models_dir, device, upscale_models, denoiser_model, face_model, threads,
                                         precision, tile, damage_model)
        self.device = self.kit.host.details.get("device", device)
        # The driver keyed every master on the weights it resolved; refuse to make masters with
        # other bytes (a file swapped between resolution and loading, or a different node's copy).
        if loaded != expected_weights:
            raise WeightsMismatchError(
                f"weights on {socket.gethostname()} differ from the driver's: {loaded} != {expected_weights}"
            )
        self.weights = loaded
        self.processed = 0  # scans this worker process handled (a restarted actor starts again at 0)
        self.busy_seconds = 0.0  # wall time with any scan in process(), for the run report's utilisation
        # Ray runs several process() calls at once on threads (settings.scans_in_flight).
        self._lock = threading.Lock()
        self._active = 0
        self._busy_since = 0.0

    def describe(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "node_id": _ray_node_id(),
                "device": self.device, "weights": self.weights, "processed": self.processed,
                "busy_seconds": round(self.busy_seconds, 3), "cpu_seconds": round(time.process_time(), 3)}

    def process(self, job: ScanJob) -> ScanOutcome:
        from tasks.steps.pipeline import process_scan

        with self._lock:
            if self._active == 0:
                self._busy_since = time.perf_counter()
            self._active += 1
        try:
            return process_scan(job, self.kit)
        finally:
            with self._lock:
                self.processed += 1
                self._active -= 1
                if self._active == 0:
                    self.busy_seconds += time.perf_counter() - self._busy_since


def _ray_node_id() -> str:
    """The Ray node this worker runs on ('' outside Ray): hosts can share a name, nodes cannot."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - placement is informative only
        return ""
