"""The smaller parts of a best config: the data it was tuned on, the search's winner trial, the
search itself, the library versions and the winner's re-run."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from tune.records._base import Finite, Record

__all__ = [
    "DataRef",
    "Ending",
    "Rerun",
    "Resampling",
    "Resources",
    "Sampling",
    "Scheduler",
    "Searcher",
    "SingleTrialBest",
    "StudyInfo",
    "TrialCounts",
    "Versions",
    "WarmStartSummary",
]

DOCUMENT = "best-config document"


class Part(Record):
    DOCUMENT = DOCUMENT


class DataRef(Part):
    """The data a best config was tuned on: its file and sha256, and (`DialogueData.facts`) its
    shape, so that a re-run on another file can tell whether it is the same data or at least data of
    the same shape."""

    path: str
    sha256: str
    modality_dims: dict[str, int] | None = None
    label_values: list[int] | None = None
    label_names: list[str] | None = None

    @field_validator("sha256")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("'data.sha256' must not be empty")
        return value

    @classmethod
    def of(cls, path: str, sha256: str, facts: dict[str, Any] | None = None) -> DataRef:
        """The data at `path` with `sha256`, with the facts `DialogueData.facts` records."""
        return cls.from_dict({**(facts or {}), "path": path, "sha256": sha256})


class SingleTrialBest(Part):
    """The search's best single trial, as it ran (before any confirmation changed the published
    config)."""

    trial_id: str
    config: dict[str, Any] | None = (
        None  # JoyfulConfig.to_dict() of the trial, for the epochs it trained
    )
    searched: dict[str, Any] | None = None
    value: Finite | None = None
    best_epoch: int | None = None
    checkpoint: str | None = None


class WarmStartSummary(Part):
    """What a warm-started search learned from: the Optuna storage, the earlier studies, how many of
    their trials were copied (learned from, not re-run) and the earlier winners proposed first."""

    storage: str
    studies: list[str]
    trials: int
    proposed: list[dict[str, Any]]


class Sampling(Part):
    """How a search's trials were proposed: the sampler, its random start-up per arm, the arms (each
    tuned on its own trials when `separate_arms`), and how many trials were queued (the baseline,
    earlier winners), drawn at random in the start-up, and proposed by the sampler's model; and how
    many ran at once, and why."""

    sampler: str
    startup_per_arm: int
    separate_arms: bool
    arms: list[str]
    queued: int
    start_up: int = Field(alias="start-up")
    model: int
    concurrency: int | None = None
    concurrency_reason: str = ""

    @property
    def proposed(self) -> int:
        return self.queued + self.start_up + self.model

    @property
    def model_share(self) -> float:
        """The share of the search's trials the sampler's model proposed."""
        return self.model / self.proposed if self.proposed else 0.0


class Ending(Part):
    """How a search's trial phase ended: every trial ran ("all trials"), or its time budget let no
    further trial start ("time budget": `trials_not_started` of the planned ones); and what the
    confirmation left out to fit what was left of the budget."""

    kind: str
    time_budget_s: Finite | None = None
    trials_started: int | None = None
    trials_not_started: int = 0
    epoch_seconds: Finite | None = (
        None  # the median epoch the trials measured (a fold's epoch with cv)
    )
    confirmation_left_out: str = ""


class Searcher(Part):
    """The sampler of the search (`optuna-<sampler>`) with its seed, the baseline proposed first,
    the warm start, and how the trials were proposed."""

    kind: str
    seed: int
    baseline_first: dict[str, Any]
    warm_start: WarmStartSummary | None = None
    sampling: Sampling | None = None


class Scheduler(Part):
    """The trial scheduler of the search: asynchronous successive halving over epochs or folds."""

    kind: str
    time_attr: str
    max_t: int  # the budget, in time_attr's units
    grace_period: int
    reduction_factor: int


class Resources(Part):
    """What each trial was given, and how many ran at once."""

    cpus_per_trial: Finite
    gpus_per_trial: Finite
    max_concurrent: int


class TrialCounts(Part):
    """How many of the search's trials ended each way (`tune.records.outcome_counts`)."""

    completed: int
    early_stopped: int
    errored: int
    non_finite: int


class StudyInfo(Part):
    """How the search ran: its name, space, Optuna study, budget, scheduler, resources, trial counts
    and times."""

    name: str  # the search (Ray experiment) name
    experiment: str
    space_file: str
    space_sha256: str
    space_fingerprint: str
    optuna_storage: str
    optuna_study: str
    num_samples: int
    searcher: Searcher
    scheduler: Scheduler
    resources: Resources
    trials: TrialCounts
    started_at: str
    ended_at: str
    search_seconds: Finite
    storage_path: str | None = None


class Versions(Part):
    """The library versions the search ran with."""

    python: str
    torch: str
    ray: str
    optuna: str
    joyful_tune: str


class Rerun(Part):
    """The search's winner re-trained through the training code path at publishing; `ran` False says
    why not."""

    ran: bool
    reason: str = ""  # why it was not re-run (ran False)
    best_dev_weighted_f1: Finite | None = None
    best_epoch: int | None = None
    reproduced: bool | None = None  # whether it scored exactly what the trial did
    device: str | None = None
    precision: str | None = None
    wall_seconds: Finite | None = None


class Resampling(Part):
    """How a search scored its trials (`tune.space.Resampling`, resolved): `holdout` on the data's
    dev split, or `cv` over `folds` folds of train + dev by dialogue; why; and the noise of a dev
    score that decided it."""

    kind: str
    folds: int | None = None
    reason: str = ""
    dev_noise: Finite | None = None  # standard error of one dev weighted F1 (tune/stats/noise.py)
