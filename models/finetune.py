"""Fidelity fine-tuning of a Real-ESRGAN compact upscaler (L1 loss on degraded scans of clean photos).

The published compact weights were trained with a GAN loss: they sharpen and invent texture, which
is what the fidelity guard and the finishing steps then have to pull back. Fine-tuning them with
a plain L1 loss against the clean photograph teaches the same network to give the most probable
image instead of a plausible one — fewer dB lost to invented detail.

Training pairs are made on the fly from clean photographs the user points at: a random crop
(flipped / rotated), shrunk x`scale` by area averaging (a scanner's sensor), then, each with its own
probability, a Gaussian defocus, Gaussian grain and a JPEG round trip at random strengths (the mix
of tasks.demo.samples' old-scan degradations, drawn from ranges rather than fixed values). Seeded: the
same images, seed and settings give the same batches.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from models.cards import CARDS
from models.loading import build_network, select_device
from models.precision import autocast, resolve_precision
from models.prepare import load_photographs
from models.weights import ResolvedWeights, import_weights, resolve
from tasks.demo.samples import add_noise, defocus_blur, jpeg_roundtrip
from tasks.files.atomic import atomic_write


@dataclass(frozen=True)
class FinetuneSettings:
    # 1,500 steps: 2.5 min on 2 cores in bf16, within 0.05 dB of 3,000 (bench/RESULTS.md, issue 22),
    # so a fresh install makes the archival upscaler before its first run.
    steps: int = 1500
    batch: int = 8
    patch: int = 128  # ground-truth crop; the degraded input is patch / scale
    lr: float = 2e-4
    seed: int = 0
    p_clean: float = 0.25  # share of pairs left undegraded beyond the downscale
    p_blur: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_noise: float = 0.5
    noise_sigma: tuple[float, float] = (2.0, 15.0)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)
    # auto: bf16 autocast where the hardware has it (models.precision); the record names the one used.
    precision: str = "auto"


def photographs_digest(photos: Sequence[np.ndarray]) -> str:
    """One sha256 over the decoded pixels of the training photographs, in order: the training
    record's name for the set (the same pictures in other files or formats hash the same)."""
    digest = hashlib.sha256()
    for photo in photos:
        digest.update(hashlib.sha256(np.ascontiguousarray(photo).tobytes()).digest())
    return digest.hexdigest()


def degrade_patch(hr: np.ndarray, scale: int, rng: np.random.Generator, s: FinetuneSettings) -> np.ndarray:
    """uint8 HR patch -> uint8 degraded scan patch, x`scale` smaller."""
    h, w = hr.shape[:2]
    lr = cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA)
    if rng.random() < s.p_clean:
        return lr
    if rng.random() < s.p_blur:
        lr = defocus_blur(lr, rng.uniform(*s.blur_sigma))
    if rng.random() < s.p_noise:
        lr = add_noise(lr, rng.uniform(*s.noise_sigma), seed=int(rng.integers(2**31)))
    if rng.random() < s.p_jpeg:
        lr = jpeg_roundtrip(lr, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)))
    return lr


def make_batch(photos: Sequence[np.ndarray], scale: int, rng: np.random.Generator,
               s: FinetuneSettings) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(s.batch):
        img = photos[int(rng.integers(len(photos)))]
        y0 = int(rng.integers(img.shape[0] - s.patch + 1))
        x0 = int(rng.integers(img.shape[1] - s.patch + 1))
        hr = np.ascontiguousarray(np.rot90(img[y0:y0 + s.patch, x0:x0 + s.patch], int(rng.integers(4))))
        if rng.random() < 0.5:
            hr = np.ascontiguousarray(hr[:, ::-1])
        xs.append(degrade_patch(hr, scale, rng, s))
        ys.append(hr)

    def stack(a: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(a).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()

    return stack(xs), stack(ys)


def finetune(parent: ResolvedWeights, photos: Sequence[np.ndarray], out_path: Path, s: FinetuneSettings,
             progress: Callable[[int, float], None] | None = None, device: str = "auto") -> dict:
    """Train from `parent`'s weights; write a `{'params': state_dict}` checkpoint to `out_path`.

    Returns the training record (settings, parent hash, photographs' hashes, final loss, time).
    """
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    scale = parent.card.scale
    usable = [p for p in photos if min(p.shape[:2]) >= s.patch]
    if not usable:
        raise ValueError(f"no photograph is at least {s.patch} px on its short side")
    where = select_device(device)  # the batches are made on the CPU either way
    precision = resolve_precision(s.precision, where)
    if precision == "fp16":
        raise ValueError("fine-tuning runs in fp32 or bf16 (fp16 training needs loss scaling)")
    net = build_network(parent.card, parent.path, where).to(memory_format=torch.channels_last)
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / s.steps)))
    start, running = time.perf_counter(), None
    for step in range(1, s.steps + 1):
        x, y = make_batch(usable, scale, rng, s)
        with autocast(precision, where):  # weights and Adam stay fp32; the convolutions run in bf16
            pred = net(x.to(where).contiguous(memory_format=torch.channels_last))
        loss = torch.nn.functional.l1_loss(pred.float(), y.to(where))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if progress is not None:
            progress(step, running)
    net.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}, out_path)
    return {
        "parent": parent.card.name, "parent_sha256": parent.sha256, "settings": asdict(s),
        "photographs": len(photos), "photographs_sha256": photographs_digest(photos),
        "final_l1": running, "seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__, "device": str(where), "precision": precision,
        # What else decides the bits: threads (the order of sums) and the kernels' instruction set.
        "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def train_and_register(files: Sequence[Path], parent_name: str, name: str, models_dir: Path, s: FinetuneSettings,
                       *, overwrite: bool = False, progress: Callable[[int, float], None] | None = None,
                       device: str = "auto") -> ResolvedWeights:
    """Fine-tune `parent_name` on the photographs in `files`, register the result as `name` in
    `models_dir` (atomically, with its sha256) and write `name`.training.json beside it."""
    parent = resolve(parent_name, models_dir)
    if parent.card.task != "upscale" or parent.card.architecture != "SRVGGNetCompact":
        raise ValueError(f"{parent_name!r} is a {parent.card.architecture} {parent.card.task} model; "
                         "fine-tuning takes a compact (SRVGGNetCompact) upscaler")
    if name == parent_name:
        raise ValueError(f"the fine-tuned weights need a name of their own, not {parent_name!r}")
    photos = load_photographs(files)
    with tempfile.TemporaryDirectory(prefix="restorium-finetune-") as tmp:
        trained = Path(tmp) / f"{name}.pth"
        record = finetune(parent, photos, trained, s, progress, device)
        like = None if name in CARDS else parent_name  # a card knows its own architecture
        got = import_weights(trained, name, models_dir, like=like, overwrite=overwrite)
    record |= {"name": name, "sha256": got.sha256, "files": [str(Path(f).resolve()) for f in files]}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(got.path.with_name(f"{name}.training.json"), lambda tmp_path: tmp_path.write_text(text))
    return got
