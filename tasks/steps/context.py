"""The step contract: what every pipeline step declares, and the one context that runs it.

A step declares its name (in provenance and in the timings), its PREMIS event type and when it
applies (a function of the plan). The context times it, stamps when it began, records the
parameters it used as a StepRecord crediting software, model and host, and — when it raises —
remembers which step failed, so the failure event has that step's name and type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tasks.records.keys import stable_uuid
from tasks.records.results import StepOutcome
from tasks.records.types import VALIDATION, AgentInfo, Outcome, ScanJob, StepRecord, utc_now


class CardLike(Protocol):  # models.cards.ModelCard, as the plan reads it
    @property
    def name(self) -> str: ...
    @property
    def training(self) -> str: ...


class UpscalerLike(Protocol):
    scale: int
    card: CardLike
    agent: AgentInfo
    last_inference_seconds: float
    last_execution: dict[str, Any]  # how the last call ran: precision, tile, overlap, batch ...

    def upscale(self, rgb: np.ndarray, tile: int, overlap: int, reduce: int = 1) -> np.ndarray: ...


class DenoiserLike(Protocol):
    agent: AgentInfo
    last_inference_seconds: float
    last_execution: dict[str, Any]

    def denoise(self, rgb: np.ndarray, sigma: float) -> np.ndarray: ...


class FaceFinder(Protocol):
    agent: AgentInfo

    def detect(self, rgb: np.ndarray) -> list: ...


class DamageFinder(Protocol):  # models.damage.DamageDetector
    agent: AgentInfo
    last_inference_seconds: float

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]: ...


@dataclass
class Toolkit:
    """What a worker lends the pipeline: loaded models and the agents to credit."""

    upscalers: Mapping[str, UpscalerLike]
    denoiser: DenoiserLike | None
    software: AgentInfo
    host: AgentInfo
    faces: FaceFinder | None = None
    damage: DamageFinder | None = None  # the learned damage detector; None: QA's classical mask


@dataclass(frozen=True)
class StepDef:
    """A pipeline step as provenance and timings know it."""

    name: str  # the StepRecord's step, and the timings' stage
    event_type: str  # PREMIS event type of its record, and of its failure
    applies: Callable[[Any], bool] = lambda plan: True  # given the scan's Plan
    stage: str = ""  # the timings' bucket when several steps share one (tone: levels, clahe, white balance)

    @property
    def timing(self) -> str:
        return self.stage or self.name


DECODE = StepDef("decode", VALIDATION)


@dataclass
class StepContext:
    """Book-keeping while one scan is processed: timings, the steps recorded, the models used,
    and the step under way (the one a failure is charged to)."""

    job: ScanJob
    kit: Toolkit
    steps: list[StepRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    models: list[AgentInfo] = field(default_factory=list)
    current: StepDef = DECODE

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    @contextmanager
    def step(self, definition: StepDef) -> Iterator[StepRun]:
        """Run one step: timed, its start time kept for its record; an exception leaves it current."""
        self.current = definition
        with self.timed(definition.timing):
            yield StepRun(self, definition, utc_now())

    def record(
        self, definition: StepDef, when: str, detail: str, parameters: dict[str, Any],
        model: AgentInfo | None = None, outcome: Outcome = StepOutcome.SUCCESS,
    ) -> StepRecord:
        if model and model not in self.models:
            self.models.append(model)
        record = StepRecord(
            event_uuid=stable_uuid(self.job.derivation_key, definition.name),
            type=definition.event_type, step=definition.name, when=when, outcome=outcome, detail=detail,
            agents=self.agents(model), parameters={**parameters, **self.keys()},
        )
        self.steps.append(record)
        return record

    def agents(self, model: AgentInfo | None = None) -> list[AgentInfo]:
        return [self.kit.software] + ([model] if model else []) + [self.kit.host]

    def keys(self) -> dict[str, str]:
        """What ties every event of this scan to its recipe and derivation."""
        return {"recipe_hash": self.job.recipe_hash, "derivation_key": self.job.derivation_key}

    def model_time(self, seconds: float) -> None:
        self.timings["model"] = self.timings.get("model", 0.0) + seconds


@dataclass
class StepRun:
    """One step under way: `record` says what it did, once."""

    context: StepContext
    definition: StepDef
    when: str

    def record(self, detail: str, parameters: dict[str, Any], *, model: AgentInfo | None = None,
               outcome: Outcome = StepOutcome.SUCCESS) -> StepRecord:
        return self.context.record(self.definition, self.when, detail, parameters, model, outcome)
