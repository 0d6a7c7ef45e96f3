"""Training the damage detector (models.damage) on synthetic damage over clean photographs.

Each training patch is a random crop of a photograph, sometimes resampled (x0.5 to x4 smaller: a
thumbnail's dense detail and a large scan's smooth pixels), flipped and rotated; on three in four,
damage is drawn at the patch's own pixel size (tasks.demo.damage: scratches, fibres, dust, with
the true mask); then, each with its own probability, a blur (the scan's optics, which soften the
damage too), grain, a JPEG round trip and fading; quantised to 8 bits like a scan. Patches left
without damage are the negatives: most of what the network must learn is what is *not* damage.

Loss: binary cross-entropy, optionally with the damage pixels weighted up and a soft Dice term
over the batch (both off by default: with them the network marked far more clean texture).
Seeded: the same photographs, settings and seed, on the same device with the same thread count,
give bit-identical weights (tests/models/test_damage.py).

Budget: `restorium models prepare --only restorium-damage-unet` makes it on request (no preset
uses it yet); the default 3,000 steps take 9 min on the 2-core development CPU (fp32, 0.17 s a step).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from models.cards import CARDS
from models.loading import instantiate, select_device
from models.precision import autocast, resolve_precision
from models.weights import ResolvedWeights, import_weights
from tasks.demo.damage import DamageMix, draw_damage
from tasks.demo.samples import add_noise, defocus_blur, fade, jpeg_roundtrip
from tasks.files.atomic import atomic_write, sha256_file

CARD_NAME = "restorium-damage-unet"


@dataclass(frozen=True)
class DamageTrainSettings:
    steps: int = 3000
    batch: int = 16
    patch: int = 96
    lr: float = 3e-3
    seed: int = 0
    p_negative: float = 0.6  # patches left without damage: most of a scan is not damage
    p_resample: float = 0.6
    resample: tuple[float, float] = (0.5, 4.0)  # shrink factor range (below 1: enlarged)
    p_blur: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    p_noise: float = 0.4
    noise_sigma: tuple[float, float] = (1.0, 12.0)
    p_jpeg: float = 0.4
    jpeg_quality: tuple[int, int] = (40, 95)
    p_fade: float = 0.2
    # Plain BCE. The earlier defaults (400 steps, pos_weight 3, Dice 1, p_negative 0.25, no top-hats
    # or BatchNorm in the card) gave pooled recall / precision 0.29 / 0.11 on bench/diagnosis.py
    # --only damage --quick; with top-hats, BatchNorm and plain BCE, 1,500 steps and 40 % undamaged
    # patches 0.51 / 0.42, 3,000 steps and 60 % 0.53 / 0.50 with fewer false alarms (92 -> 67 % of
    # clean photos: still far too many). A run with pos_weight 5 and Dice 0.5 stayed at precision 0.25.
    pos_weight: float = 1.0
    dice_weight: float = 0.0
    mix: DamageMix = field(default_factory=DamageMix)
    # fp32: this small U-Net trains 13x slower under bf16 autocast on the 2-core EPYC (0.36 s a step
    # against 4.6 s, one thread: oneDNN has no fast bf16 path for its pooling and transposed
    # convolutions); "auto" would pick bf16 there.
    precision: str = "fp32"


def make_patch(photo: np.ndarray, rng: np.random.Generator, s: DamageTrainSettings) -> tuple[np.ndarray, np.ndarray]:
    """One training example from a uint8 RGB photograph: (uint8 patch x patch x 3, bool mask)."""
    h, w = photo.shape[:2]
    factor = 1.0
    if rng.random() < s.p_resample:
        lo, hi = s.resample
        factor = min(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), min(h, w) / s.patch)
    side = max(8, int(round(s.patch * factor)))
    y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = photo[y0:y0 + side, x0:x0 + side]
    if side != s.patch:
        crop = cv2.resize(crop, (s.patch, s.patch), interpolation=cv2.INTER_AREA if side > s.patch else cv2.INTER_CUBIC)
    crop = np.rot90(crop, int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = np.ascontiguousarray(crop).astype(np.float32) / 255
    if rng.random() < s.p_negative:
        mask = np.zeros((s.patch, s.patch), bool)
    else:
        mask = draw_damage(img, rng, s.mix)
    out = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if rng.random() < s.p_blur:
        out = defocus_blur(out, rng.uniform(*s.blur_sigma))
    if rng.random() < s.p_fade:
        out = fade(out, rng.uniform(0.1, 0.4))
    if rng.random() < s.p_noise:
        out = add_noise(out, rng.uniform(*s.noise_sigma), seed=int(rng.integers(2**31)))
    if rng.random() < s.p_jpeg:
        out = jpeg_roundtrip(out, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)))
    return out, mask


def make_batch(photos: Sequence[np.ndarray], rng: np.random.Generator,
               s: DamageTrainSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, P, P) float in [0, 1] and (N, 1, P, P) float targets."""
    xs, ys = [], []
    for _ in range(s.batch):
        x, y = make_patch(photos[int(rng.integers(len(photos)))], rng, s)
        xs.append(x)
        ys.append(y)
    x_t = torch.from_numpy(np.stack(xs).astype(np.float32) / 255).permute(0, 3, 1, 2)
    y_t = torch.from_numpy(np.stack(ys).astype(np.float32))[:, None]
    return x_t.contiguous(memory_format=torch.channels_last), y_t


def damage_loss(logits: torch.Tensor, target: torch.Tensor, s: DamageTrainSettings) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(s.pos_weight))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + s.dice_weight * dice


def train(photos: Sequence[np.ndarray], out_path: Path, s: DamageTrainSettings,
          progress: Callable[[int, float], None] | None = None, device: str = "auto") -> dict:
    """Train a fresh DamageUNet; write a `{'params': state_dict}` checkpoint to `out_path`.
    Returns the training record (settings, photographs' hashes, final loss, time)."""
    usable = [p for p in photos if min(p.shape[:2]) >= s.patch]
    if not usable:
        raise ValueError(f"no photograph is at least {s.patch} px on its short side")
    where = select_device(device)  # batches are made on the CPU either way
    precision = resolve_precision(s.precision, where)
    if precision == "fp16":
        raise ValueError("damage training runs in fp32 or bf16 (fp16 training needs loss scaling)")
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    net = instantiate(CARDS[CARD_NAME]).to(where).to(memory_format=torch.channels_last)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=1e-4)
    warmup = max(1, s.steps // 20)

    def rate(i: int) -> float:  # a short warm-up (a fresh network at a high rate), then cosine decay
        return min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * i / s.steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    start, running = time.perf_counter(), None
    for step in range(1, s.steps + 1):
        x, y = make_batch(usable, rng, s)
        with autocast(precision, where):  # weights and AdamW stay fp32; the convolutions run in bf16
            logits = net(x.to(where))
        loss = damage_loss(logits.float(), y.to(where), s)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if progress is not None:
            progress(step, running)
    net.eval()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}, out_path)
    digest = hashlib.sha256()
    for photo in photos:
        digest.update(hashlib.sha256(np.ascontiguousarray(photo).tobytes()).digest())
    return {
        "settings": asdict(s), "seed": s.seed, "photographs": len(photos),
        "photographs_sha256": digest.hexdigest(), "final_loss": running,
        "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__, "device": str(where),
        "threads": torch.get_num_threads(), "precision": precision,
    }


def train_damage_detector(files: Sequence[Path], name: str, models_dir: Path, settings: DamageTrainSettings, *,
                          overwrite: bool = False, progress: Callable[[int, float], None] | None = None,
                          device: str = "auto") -> ResolvedWeights:
    """Train the damage detector on the clean photographs in `files`, register it as `name` in
    `models_dir` (atomically, with its sha256) and write `name`.training.json beside it."""
    photos = []
    for path in files:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{path}: cannot read as a photograph")
        photos.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    with tempfile.TemporaryDirectory(prefix="restorium-damage-") as tmp:
        trained = Path(tmp) / f"{name}.pth"
        record = train(photos, trained, settings, progress, device)
        like = None if name in CARDS else CARD_NAME  # a card knows its own architecture
        got = import_weights(trained, name, models_dir, like=like, overwrite=overwrite)
    record |= {"name": name, "sha256": got.sha256, "files": [str(Path(f).resolve()) for f in files],
               "files_sha256": [sha256_file(Path(f)) for f in files]}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    atomic_write(got.path.with_name(f"{name}.training.json"), lambda tmp_path: tmp_path.write_text(text))
    return got
