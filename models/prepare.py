"""The weights restorium makes itself, made where they are missing: `restorium models prepare`.

Nobody publishes two of the archival preset's models, so each machine makes them from published
parents and clean photographs:

  restorium-fidelity-x4v3   realesr-general-x4v3 fine-tuned for fidelity (models.finetune)
  restorium-damage-unet     the scratch and dust segmenter (models.damage_training), made only
                            when asked for: no preset uses it yet (bench/diagnosis.py --only damage
                            measures it against the classical detector, which it does not beat)

A model is made only when it is absent or its training record names other settings or other
photographs than today's (a change of either remakes it; the same ones never train twice). The
published weights of `source` (the shared models folder on developers' and CI machines) are
linked into the folder first, so one folder holds everything a run needs. Training is seeded and
runs on a fixed number of threads: the same photographs give the same bytes on the same kind of CPU
(the record names the CPU's instruction set, threads and precision that made them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from models.weights import ResolvedWeights, WeightsError, resolve

if TYPE_CHECKING:  # torch-heavy modules, imported when training
    from models.damage_training import DamageTrainSettings
    from models.finetune import FinetuneSettings

FIDELITY_MODEL = "restorium-fidelity-x4v3"
FIDELITY_PARENT = "realesr-general-x4v3"
DAMAGE_MODEL = "restorium-damage-unet"
# Threads every training runs on, whatever the machine: a thread count changes the order of
# floating-point sums, hence the bits (measured: 1 vs 2 threads give different weights, the same
# count identical ones). Two is what the smallest supported machine has.
TRAINING_THREADS = 2

Progress = Callable[[str, int, int, float], None]  # model, step, steps, running loss


@dataclass(frozen=True)
class Prepared:
    name: str
    action: str  # "made", "kept" (up to date) or "linked" (published weights from the source)
    path: Path
    sha256: str
    seconds: float = 0.0


def load_photographs(files: Sequence[Path]) -> list[np.ndarray]:
    photos = []
    for path in files:
        try:
            photos.append(np.asarray(Image.open(path).convert("RGB")))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read as a photograph: {exc}") from exc
    return photos


def link_published(source: Path, models_dir: Path) -> list[Prepared]:
    """Symlink the weights files in `source` into `models_dir` (read-only shared weights stay where
    they are; resolve() hashes them through the link)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    linked = []
    for src in sorted([*source.glob("*.pth"), *source.glob("*.onnx")]):
        dest = models_dir / src.name
        if dest.is_symlink() and dest.resolve() == src.resolve():
            continue
        if dest.exists() or dest.is_symlink():
            continue  # a file of the folder's own (an import, a made model) is never replaced
        dest.symlink_to(src.resolve())
        linked.append(Prepared(src.stem, "linked", dest, ""))
    return linked


def _record(models_dir: Path, name: str) -> dict[str, Any] | None:
    path = models_dir / f"{name}.training.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def up_to_date(models_dir: Path, name: str, settings: Any, photographs_sha256: str) -> ResolvedWeights | None:
    """The registered weights when their record names these settings and photographs and the file
    is the one the record made; else None (make them)."""
    record = _record(models_dir, name)
    if record is None or record.get("photographs_sha256") != photographs_sha256:
        return None
    if record.get("settings") != json.loads(json.dumps(asdict(settings))):
        return None
    try:
        got = resolve(name, models_dir)
    except WeightsError:
        return None
    return got if got.sha256 == record.get("sha256") else None


def prepare(models_dir: Path, files: Sequence[Path], *, source: Path | None = None,
            only: Sequence[str] = (FIDELITY_MODEL,), progress: Progress | None = None,
            device: str = "cpu", fidelity: FinetuneSettings | None = None,
            damage: DamageTrainSettings | None = None) -> list[Prepared]:
    """Link `source`'s published weights into `models_dir`, then make each model of `only` that is
    missing or out of date from the photographs in `files`. Returns what happened to each.

    fidelity / damage: the training settings (default: their defaults)."""
    import torch

    from models.damage_training import DamageTrainSettings, train_damage_detector
    from models.finetune import FinetuneSettings, photographs_digest, train_and_register

    models_dir = Path(models_dir)
    done = link_published(Path(source), models_dir) if source is not None else []
    photos = load_photographs(files)
    digest = photographs_digest(photos)
    torch.set_num_threads(TRAINING_THREADS)
    makers: dict[str, tuple[Any, Callable[[Any], ResolvedWeights]]] = {
        FIDELITY_MODEL: (fidelity or FinetuneSettings(), lambda s: train_and_register(
            files, FIDELITY_PARENT, FIDELITY_MODEL, models_dir, s, overwrite=True, device=device,
            progress=None if progress is None else lambda i, loss: progress(FIDELITY_MODEL, i, s.steps, loss))),
        DAMAGE_MODEL: (damage or DamageTrainSettings(), lambda s: train_damage_detector(
            files, DAMAGE_MODEL, models_dir, s, overwrite=True,
            progress=None if progress is None else lambda i, loss: progress(DAMAGE_MODEL, i, s.steps, loss))),
    }
    for name in only:
        if name not in makers:
            raise ValueError(f"{name!r} is not a model restorium makes (one of: {', '.join(makers)})")
        settings, make = makers[name]
        kept = up_to_date(models_dir, name, settings, digest)
        if kept is not None:
            done.append(Prepared(name, "kept", kept.path, kept.sha256))
            continue
        start = time.perf_counter()
        got = make(settings)
        done.append(Prepared(name, "made", got.path, got.sha256, round(time.perf_counter() - start, 1)))
    return done
