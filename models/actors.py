"""The worker that keeps models loaded on one device and masters scans with them.

A plain class: flows/workers.py turns it into a Ray actor (resources, restarts, names). It loads
every model once in __init__ and reuses them for every scan of every shard.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from config.version import SOFTWARE_NAME, software_version
from tasks.types import AgentInfo, ScanJob, ScanOutcome


class WeightsMismatchError(RuntimeError):
    pass


def host_agent(device: str) -> AgentInfo:
    """The machine and device that ran a step (recorded; not part of any key)."""
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        detail = f"cuda {props.name} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    else:
        detail = f"cpu {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads (torch {torch.__version__})"
    return AgentInfo(kind="host", name=socket.gethostname(), version=detail, architecture=platform.machine())


class ScanWorker:
    def __init__(
        self, models_dir: str, device: str, upscale_models: list[str], denoiser_model: str | None,
        expected_weights: dict[str, str], threads: int | None = None, face_model: str | None = None,
    ):
        import torch

        from models.loading import select_device
        from models.upscaler import Denoiser, Upscaler
        from models.weights import resolve
        from tasks.pipeline import Toolkit

        if threads:
            torch.set_num_threads(threads)
        self.device = str(select_device(device))
        folder = Path(models_dir)
        loaded = {}
        upscalers = {}
        for name in upscale_models:
            weights = resolve(name, folder)
            upscalers[name] = Upscaler(weights, device=self.device)
            loaded[name] = weights.sha256
        denoiser = None
        if denoiser_model:
            weights = resolve(denoiser_model, folder)
            denoiser = Denoiser(weights, device=self.device)
            loaded[denoiser_model] = weights.sha256
        faces = None
        if face_model:
            from models.faces import FaceDetector

            weights = resolve(face_model, folder)
            # A low floor here: the recipe's own threshold filters what the pipeline uses.
            faces = FaceDetector(weights.path, score_threshold=0.5, name=face_model)
            loaded[face_model] = weights.sha256
        # The driver keyed every master on the weights it resolved; refuse to make masters with
        # other bytes (a file swapped between resolution and loading, or a different node's copy).
        if loaded != expected_weights:
            raise WeightsMismatchError(
                f"weights on {socket.gethostname()} differ from the driver's: {loaded} != {expected_weights}"
            )
        self.weights = loaded
        self.kit = Toolkit(
            upscalers=upscalers, denoiser=denoiser, faces=faces,
            software=AgentInfo(kind="software", name=SOFTWARE_NAME, version=software_version()),
            host=host_agent(self.device),
        )

    def describe(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "device": self.device, "weights": self.weights}

    def process(self, job: ScanJob) -> ScanOutcome:
        from tasks.pipeline import process_scan

        return process_scan(job, self.kit)
