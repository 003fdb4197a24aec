"""The best config of a data set: what `train.py --config` reads, how it was found, and the rule
that decides whether a new result replaces it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from joyful.config import CONFIG_SCHEMA_VERSION, JoyfulConfig
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from tune.records._confirmation import Confirmation
from tune.records._ensemble import Ensemble
from tune.records._parts import (
    DataRef,
    Part,
    Rerun,
    Resampling,
    SingleTrialBest,
    StudyInfo,
    Versions,
)
from tune.records._references import References
from tune.records._scores import Comparison, Metric, TestScores

__all__ = ["BEST_CONFIG_KIND", "BEST_CONFIG_SCHEMA_VERSION", "BestConfig"]

# A best-config file is a superset of the plain config document, so both share one version.
BEST_CONFIG_SCHEMA_VERSION = CONFIG_SCHEMA_VERSION
BEST_CONFIG_KIND = "joyful-tune best config"


class BestConfig(Part):
    """The best config of a data set: what `train.py --config` reads, and how it was found."""

    schema_version: int
    kind: str = BEST_CONFIG_KIND
    dataset: str
    modalities: str
    data: DataRef
    config: dict[str, Any]  # JoyfulConfig.to_dict() of the winner
    searched: dict[str, Any]  # the winner's searched parameters
    metric: Metric
    test: TestScores | None
    single_trial_best: SingleTrialBest
    confirmation: Confirmation | None
    study: StudyInfo
    versions: Versions
    rerun_command: str
    checkpoint: str | None
    written_at: str
    references: References | None = None
    rerun: Rerun  # the winner re-trained at publishing, or why not
    # The published ensemble: the confirmed winner's runs (model files under results/models),
    # scored.
    ensemble: Ensemble | None = None
    resampling: (
        Resampling  # how trials were scored: the data's dev split, or K-fold cross-validation
    )
    # The headline comparisons, each with a paired interval over dialogues and runs and one Holm
    # family: the published model vs the logistic regression and each reference run, the winner vs
    # the baseline, the proposal vs the baseline.
    comparisons: list[Comparison] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> BestConfig:
        if self.schema_version != BEST_CONFIG_SCHEMA_VERSION:
            raise ValueError(
                f"'schema_version' is {self.schema_version}, but this joyful-tune reads "
                f"{BEST_CONFIG_SCHEMA_VERSION}"
                + (
                    "; upgrade joyful-tune"
                    if self.schema_version > BEST_CONFIG_SCHEMA_VERSION
                    else "; re-run the search with this joyful-tune"
                )
            )
        if self.kind != BEST_CONFIG_KIND:
            raise ValueError(f"'kind' is {self.kind!r}, but must be {BEST_CONFIG_KIND!r}")
        try:
            check_dataset_name(self.dataset)
        except UserError:
            raise ValueError(
                f"'dataset' {self.dataset!r} is not a plain name (letters, digits, _ . -)"
            ) from None
        try:
            self.joyful_config(source="'config'")
        except UserError as exc:
            raise ValueError(str(exc)) from None
        for key, expected in (("dataset", self.dataset), ("modalities", self.modalities)):
            if self.config.get(key) != expected:
                raise ValueError(
                    f"'config.{key}' is {self.config.get(key)!r}, but {key!r} is {expected!r}"
                )
        if not self.rerun_command.strip():
            raise ValueError("'rerun_command' must not be empty")
        try:
            datetime.fromisoformat(self.written_at.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'written_at' {self.written_at!r} is not an ISO 8601 time") from None
        return self

    @property
    def value(self) -> float:
        return self.metric.value

    def joyful_config(self, source: str | None = None) -> JoyfulConfig:
        return JoyfulConfig.from_dict(
            self.config, source=source or f"best config of {self.dataset}"
        )

    # --- which result the best-config file holds
    # ------------------------------------------------------

    def replaces(self, current: BestConfig, overwrite: bool = False) -> tuple[bool, str]:
        """Whether this result replaces `current` (a valid best config of the same data set), and
        the reason shown to the user: strictly better on the same data and metric, or `overwrite`.
        """
        old_metric, new_metric = current.metric, self.metric
        old_sha, new_sha = current.data.sha256, self.data.sha256
        if old_sha != new_sha:
            difference = (
                f"earlier result is for other data (sha256 {old_sha[:12]}… vs {new_sha[:12]}…)"
            )
        elif (old_metric.name, old_metric.mode) != (new_metric.name, new_metric.mode):
            difference = (
                f"earlier result uses another metric ({old_metric.name}/{old_metric.mode} "
                f"vs {new_metric.name}/{new_metric.mode})"
            )
        elif (current.resampling.kind, current.resampling.folds) != (
            self.resampling.kind,
            self.resampling.folds,
        ):
            # A dev split's score and a mean over folds are not one scale: neither value beats the
            # other.
            difference = (
                f"earlier result was scored by {_scored_by(current)}, this one by "
                f"{_scored_by(self)}: the two scores are not comparable"
            )
        else:
            difference = None
        if difference is not None:
            if overwrite:
                return (
                    True,
                    f"overwrite requested; {difference} — replaced, earlier kept in history",
                )
            return False, (
                f"kept earlier result: {difference}; pass --overwrite to replace it (this result "
                "is kept in history)"
            )
        old, value, mode, name = (
            old_metric.value,
            new_metric.value,
            new_metric.mode,
            new_metric.name,
        )
        if new_metric.better(old_metric):
            sign = ">" if mode == "max" else "<"
            reason = f"better than earlier result: {value:.6g} {sign} {old:.6g} ({name}, {mode})"
            if current.confirmation and not self.confirmation:
                # Said, not refused: the search's own choice (--confirm-top 0); the earlier one
                # stays in the history.
                reason += (
                    "; note: the earlier result was confirmed over seeds and this one is a single "
                    "unconfirmed trial - confirm it with tune/confirm.py"
                )
            return True, reason
        if overwrite:
            return True, f"overwrite requested (earlier {old:.6g}, this {value:.6g} {name})"
        sign = ">=" if mode == "max" else "<="
        return False, (
            f"kept earlier result of search {current.study.name!r}: {old:.6g} {sign} {value:.6g} "
            f"on the same data and metric ({name}, {mode})"
        )

    def confirms(self, current: BestConfig) -> tuple[bool, str]:
        """Whether this result, a confirmation of its search, may update `current`: only while
        `current` holds the result of the same search on the same data (a newer search may have
        published in between)."""
        if current.data.sha256 != self.data.sha256:
            return False, (
                f"kept earlier result: it is for other data (sha256 {current.data.sha256[:12]}… vs "
                f"{self.data.sha256[:12]}…); the confirmation is kept in history"
            )
        if current.study.name != self.study.name:
            return False, (
                f"kept earlier result: it now holds search {current.study.name!r}, not the "
                f"confirmed {self.study.name!r}; the confirmation is kept in history"
            )
        return True, f"confirmation of search {self.study.name!r} recorded"


def _scored_by(best: BestConfig) -> str:
    return (
        f"{best.resampling.folds}-fold cross-validation"
        if best.resampling.kind == "cv"
        else "the dev split"
    )
