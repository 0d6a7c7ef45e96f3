"""Agents that performed a step: restorium itself (with its git commit) and the machine and
device it ran on (CPU model, GPU, driver, torch version). In models/ because describing the device
asks torch; recorded, never part of a key."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

from config.version import SOFTWARE_NAME, software_details, software_version
from tasks.records.types import AgentInfo


def software_agent() -> AgentInfo:
    """restorium itself, with the git commit when it runs from a checkout."""
    return AgentInfo(kind="software", name=SOFTWARE_NAME, version=software_version(), details=software_details())


@functools.cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def _nvidia_driver() -> str:
    """The NVIDIA kernel driver's version ('' when unknown): torch reports the CUDA runtime only."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        for word in text.split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    except OSError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return ""


def machine_agent() -> AgentInfo:
    """The machine, without a compute device: for steps that only read files (fixity checks,
    approvals). Light: no torch."""
    details = {"cpu": _cpu_model(), "cpu_count": str(os.cpu_count() or ""), "os": platform.platform(),
               "python": platform.python_version()}
    return AgentInfo(kind="host", name=socket.gethostname(), version=platform.system(),
                     architecture=platform.machine(), details={k: v for k, v in details.items() if v})


def host_agent(device: str) -> AgentInfo:
    """The machine and device that ran a step (recorded; not part of any key). `version` and
    `architecture` keep their earlier meaning; `details` adds CPU/GPU model, driver and threads."""
    import torch

    details: dict[str, str] = {
        "device": device, "cpu": _cpu_model(), "cpu_count": str(os.cpu_count() or ""),
        "os": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
    }
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        detail = f"cuda {props.name} (torch {torch.__version__}, CUDA {torch.version.cuda})"
        details.update({"gpu": props.name, "gpu_memory_mib": str(props.total_memory // 2**20),
                        "cuda": str(torch.version.cuda), "gpu_driver": _nvidia_driver(),
                        "cudnn": str(torch.backends.cudnn.version() or "")})
    else:
        detail = f"cpu {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads (torch {torch.__version__})"
        details["threads"] = str(torch.get_num_threads())
    return AgentInfo(kind="host", name=socket.gethostname(), version=detail, architecture=platform.machine(),
                     details={k: v for k, v in details.items() if v})
