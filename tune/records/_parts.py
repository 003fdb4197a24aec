"""The smaller parts of a best config: the data it was tuned on, the search's winner trial, the search itself,
the library versions and the winner's re-run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tune.records._document import DOCUMENT, Part

__all__ = ["DataRef", "Rerun", "Resources", "Scheduler", "Searcher", "SingleTrialBest", "StudyInfo", "TrialCounts",
           "Versions", "WarmStartSummary"]

_NUMBER = (int, float, type(None))


@dataclass(frozen=True, kw_only=True)
class DataRef(Part):
    """The data a best config was tuned on: its file and sha256, and (`DialogueData.facts`) its shape, so that
    a re-run on another file can tell whether it is the same data or at least data of the same shape."""

    KEY = "data"
    REQUIRED = ("path", "sha256")
    TYPES = {"path": str, "sha256": str, "modality_dims": dict, "label_values": list, "label_names": list}
    OMIT_NONE = ("modality_dims", "label_values", "label_names")

    path: str
    sha256: str
    modality_dims: dict[str, int] | None = None
    label_values: list[int] | None = None
    label_names: list[str] | None = None

    def check(self) -> None:
        if not self.sha256:
            raise ValueError(f"{DOCUMENT}: 'data.sha256' must not be empty")

    @classmethod
    def of(cls, path: str, sha256: str, facts: dict[str, Any] | None = None) -> DataRef:
        """The data at `path` with `sha256`, with the facts `DialogueData.facts` records (other keys kept)."""
        return cls.from_dict({**(facts or {}), "path": path, "sha256": sha256})


@dataclass(frozen=True, kw_only=True)
class SingleTrialBest(Part):
    """The search's best single trial, as it ran (before any confirmation changed the published config)."""

    KEY = "single_trial_best"
    REQUIRED = ("trial_id",)
    TYPES = {"trial_id": str, "config": dict, "searched": dict, "value": _NUMBER, "best_epoch": (int, type(None)),
             "checkpoint": (str, type(None))}

    trial_id: str
    config: dict[str, Any] | None = None  # JoyfulConfig.to_dict() of the trial, for the epochs it trained
    searched: dict[str, Any] | None = None
    value: float | None = None
    best_epoch: int | None = None
    checkpoint: str | None = None


@dataclass(frozen=True, kw_only=True)
class WarmStartSummary(Part):
    """What a warm-started search learned from: the Optuna storage, the earlier studies, how many of their
    trials were copied (learned from, not re-run) and the earlier winners proposed first."""

    KEY = "warm_start"
    REQUIRED = ("storage", "studies", "trials", "proposed")
    TYPES = {"storage": str, "studies": list, "trials": int, "proposed": list}

    storage: str
    studies: list[str]
    trials: int
    proposed: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Searcher(Part):
    """The sampler of the search: Optuna's TPE with its seed, the baseline proposed first, the warm start."""

    KEY = "study.searcher"
    TYPES = {"kind": str, "seed": int, "baseline_first": dict}
    PARTS = {"warm_start": WarmStartSummary}

    kind: str | None = None
    seed: int | None = None
    baseline_first: dict[str, Any] | None = None
    warm_start: WarmStartSummary | None = None


@dataclass(frozen=True, kw_only=True)
class Scheduler(Part):
    """The trial scheduler of the search: ASHA on epochs."""

    KEY = "study.scheduler"
    TYPES = {"kind": str, "time_attr": str, "max_t": int, "grace_period": int, "reduction_factor": int}

    kind: str | None = None
    time_attr: str | None = None
    max_t: int | None = None  # the epoch budget
    grace_period: int | None = None
    reduction_factor: int | None = None


@dataclass(frozen=True, kw_only=True)
class Resources(Part):
    """What each trial was given, and how many ran at once."""

    KEY = "study.resources"
    TYPES = {"cpus_per_trial": _NUMBER, "gpus_per_trial": _NUMBER, "max_concurrent": int}

    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    max_concurrent: int | None = None

    def budget_values(self) -> dict[str, Any]:
        """The settings it records, as `Budget` fields."""
        return {name: getattr(self, name) for name in self.field_names() if getattr(self, name) is not None}


@dataclass(frozen=True, kw_only=True)
class TrialCounts(Part):
    """How many of the search's trials ended each way (`tune.records.outcome_counts`)."""

    KEY = "study.trials"
    TYPES = {"completed": int, "early_stopped": int, "errored": int, "non_finite": int}

    completed: int | None = None
    early_stopped: int | None = None
    errored: int | None = None
    non_finite: int | None = None


@dataclass(frozen=True, kw_only=True)
class StudyInfo(Part):
    """How the search ran: its name, space, Optuna study, budget, scheduler, resources and trial counts."""

    KEY = "study"
    REQUIRED = ("name", "space_file", "space_sha256", "num_samples", "searcher", "scheduler", "trials",
                "started_at", "ended_at", "storage_path")
    TYPES = {"name": str, "experiment": str, "space_file": str, "space_sha256": str, "space_fingerprint": str,
             "optuna_storage": str, "optuna_study": str, "num_samples": int, "search_seconds": (int, float)}
    PARTS = {"searcher": Searcher, "scheduler": Scheduler, "resources": Resources, "trials": TrialCounts}

    name: str  # the search (Ray experiment) name
    experiment: str | None = None
    space_file: str
    space_sha256: str
    space_fingerprint: str | None = None
    optuna_storage: str | None = None
    optuna_study: str | None = None
    num_samples: int
    searcher: Searcher
    scheduler: Scheduler
    resources: Resources | None = None
    trials: TrialCounts
    started_at: Any
    ended_at: Any
    search_seconds: float | None = None
    storage_path: Any


@dataclass(frozen=True, kw_only=True)
class Versions(Part):
    """The library versions the search ran with."""

    KEY = "versions"
    REQUIRED = ("python", "torch", "ray", "optuna", "joyful_tune")

    python: str
    torch: str
    ray: str
    optuna: str
    joyful_tune: str


@dataclass(frozen=True, kw_only=True)
class Rerun(Part):
    """The search's winner re-trained through the training code path at publishing (`ran` False: not re-run)."""

    KEY = "rerun"
    REQUIRED = ("ran",)
    TYPES = {"ran": bool, "best_dev_weighted_f1": _NUMBER, "best_epoch": (int, type(None)),
             "reproduced": (bool, type(None)), "device": (str, type(None)), "wall_seconds": _NUMBER}
    OMIT_NONE = ("best_dev_weighted_f1", "best_epoch", "reproduced", "device", "wall_seconds")

    ran: bool
    best_dev_weighted_f1: float | None = None
    best_epoch: int | None = None
    reproduced: bool | None = None  # whether it scored exactly what the trial did
    device: str | None = None
    wall_seconds: float | None = None


