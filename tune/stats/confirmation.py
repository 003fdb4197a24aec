"""A confirmation as it runs: its runs (one per configuration, seed and, with cross-validation,
fold), their statistics, the confirmed winner, and its tables.

Pure bookkeeping (no Ray, no training): `tune/runner/confirmation.py` fills a `ConfirmationResult`;
its `to_record` is the `tune.records.Confirmation` a best config stores (and reads back), which the
tables and the report read.

The winner is the configuration with the highest mean dev score over its runs (with cross-validation
each run's dev split is its held-out fold). It is published only when it beats the baseline by more
than the noise: the paired dialogue-level interval of their difference on the same dev utterances
(out-of-fold with cross-validation) must exclude 0; a tie publishes the baseline, the simpler claim,
unless the space says `on_tie: winner`. Every standard deviation is the sample one (n - 1);
t-intervals are over runs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from joyful.config import JoyfulConfig
from tune.common import utc_now
from tune.records import (
    CONFIRMATION_KIND,
    Comparison,
    ConfigurationRecord,
    Confirmation,
    Effects,
    PairedDifference,
    Summary,
)
from tune.stats.effects import compare_effects, mean_ci95, summarise_runs
from tune.stats.runs import (
    ConfigRuns,
    SeedRun,
    comparison,
    ensemble_scores,
    key_label,
    paired_difference,
    paired_predictions,
    paired_run_sets,
)

__all__ = [
    "BASELINE_LABEL",
    "ConfigRuns",
    "ConfirmationResult",
    "SeedRun",
    "choose_confirmed_winner",
    "comparison",
    "ensemble_scores",
    "key_label",
    "mean_ci95",
    "paired_difference",
    "paired_predictions",
]

BASELINE_LABEL = "baseline"


@dataclass
class ConfirmationResult:
    """The confirmation of one search: every configuration's runs, their statistics and the
    winner."""

    seeds: list[int]
    entries: list[ConfigRuns]  # the baseline first, then the candidates in rank order
    winner_label: str
    wall_seconds: float = 0.0
    experiment: str = ""
    proposal: dict[str, Any] = field(default_factory=dict)  # the space's proposal (empty: none)
    folds: int = 0  # 0: the data's dev split; K: each run held out one of K folds
    n_classes: int = 0
    tie: str | None = (
        None  # why the baseline is published although another configuration scored higher
    )

    def entry(self, label: str) -> ConfigRuns:
        return next(e for e in self.entries if e.label == label)

    def has(self, label: str) -> bool:
        return any(e.label == label for e in self.entries)

    @property
    def baseline(self) -> ConfigRuns:
        return self.entry(BASELINE_LABEL)

    @property
    def winner(self) -> ConfigRuns:
        return self.entry(self.winner_label)

    @property
    def winner_run(self) -> SeedRun:
        """The winner's median run: the run `winner_config` reproduces."""
        return self.winner.representative()

    @property
    def winner_config(self) -> JoyfulConfig:
        """The confirmed winner, with the seed (and fold) of its median run, so `train.py --config`
        reproduces it."""
        run = self.winner_run
        config = self.winner.config.replace(seed=run.seed)
        return config.replace(cv_fold=run.fold) if run.fold else config

    @property
    def selection_split(self) -> str:
        return "out-of-fold (cross-validation)" if self.folds else "dev"

    def decide_ties(self, on_tie: str) -> None:
        """Publish the baseline when the winner's lead over it is within the noise (their paired
        interval on the dev utterances holds 0), unless `on_tie` is "winner"."""
        if on_tie != BASELINE_LABEL or self.winner_label == BASELINE_LABEL or not self.n_classes:
            return
        ours, theirs = paired_run_sets(self.winner, self.baseline, "dev")
        if ours is None or theirs is None:
            return
        lead = comparison(
            "winner vs baseline",
            self.winner_label,
            BASELINE_LABEL,
            self.selection_split,
            ours,
            theirs,
            self.n_classes,
        )
        if lead.tie:
            self.tie = (
                f"{self.winner_label} had the highest mean dev wF1, but against the baseline on "
                "the same "
                f"{self.selection_split} dialogues it differs by {lead.estimate:+.4f} wF1, paired "
                "interval "
                f"[{lead.ci95[0]:+.4f}, {lead.ci95[1]:+.4f}], which holds 0: a tie publishes the "
                "baseline"
            )
            self.winner_label = BASELINE_LABEL

    def comparisons(self) -> list[Comparison]:
        """The winner against the baseline, and the proposal against the baseline, on the
        confirmation's folds and on test; each a paired interval over dialogues and runs."""
        pairs = [("winner vs baseline", self.winner_label, BASELINE_LABEL)]
        proposed = self.proposal_entry()
        if proposed is not None:
            pairs.append(("proposal vs baseline", proposed.label, BASELINE_LABEL))
        found = []
        for name, first, second in pairs:
            if first == second or not self.has(first) or not self.has(second):
                continue
            for split, words in (("dev", self.selection_split), ("test", "test")):
                a, b = paired_run_sets(self.entry(first), self.entry(second), split)
                if a is not None and b is not None:
                    found.append(comparison(name, first, second, words, a, b, self.n_classes))
        return found

    def proposal_entry(self) -> ConfigRuns | None:
        if not self.proposal:
            return None
        return next(
            (
                e
                for e in self.entries
                if e.label != BASELINE_LABEL
                and all(getattr(e.config, k) == v for k, v in self.proposal.items())
            ),
            None,
        )

    def effects_pair(self) -> tuple[ConfigRuns, ConfigRuns] | None:
        """(baseline, proposal): the proposal's entry (the best trial with its values), each at its
        own arm's tuned settings; None without a proposal to compare (never another trial)."""
        proposed = self.proposal_entry()
        if not self.baseline.values() or proposed is None or not proposed.values():
            return None
        return self.baseline, proposed

    def to_record(self) -> Confirmation:
        """The confirmation as the best config records it (statistics computed here, `finished_at`
        now)."""
        baseline = self.baseline
        configurations = [
            ConfigurationRecord(
                label=e.label,
                config=e.config.to_dict(),
                searched=_searched(e.config, baseline.config),
                dev_weighted_f1=Summary(**mean_ci95(list(e.values().values()))),
                test_weighted_f1=Summary(**mean_ci95(list(e.values("test_weighted_f1").values()))),
                raw_test_weighted_f1=Summary(
                    **mean_ci95(list(e.values("raw_test_weighted_f1").values()))
                ),
                ensemble=ensemble_scores(e.runs),
                paired_diff_to_baseline=None
                if e.label == BASELINE_LABEL
                else PairedDifference(**paired_difference(e.values(), baseline.values())),
                runs=[r.to_record() for r in e.runs],
            )
            for e in self.entries
        ]
        pair = self.effects_pair()
        effects = None
        keys = sorted(set(pair[0].values()) & set(pair[1].values())) if pair is not None else []
        if keys:  # effects are measured on the runs both configurations have
            by_key = [{r.key: r for r in e.runs} for e in pair]
            effects = Effects(
                baseline=pair[0].label,
                compared=pair[1].label,
                compared_is_winner=pair[1].label == self.winner_label,
                proposal=dict(self.proposal),
                runs=[key_label(k) for k in keys],
                rows=compare_effects(
                    summarise_runs([by_key[0][k].curve() for k in keys], [k[0] for k in keys]),
                    summarise_runs([by_key[1][k].curve() for k in keys], [k[0] for k in keys]),
                ),
            )
        run = self.winner_run
        return Confirmation(
            kind=CONFIRMATION_KIND,
            metric="dev_weighted_f1",
            seeds=list(self.seeds),
            winner=self.winner_label,
            winner_seed=run.seed,
            winner_fold=run.fold,
            selection="highest mean dev wF1 over the runs (its held-out fold's with "
            "cross-validation, on a fresh fold assignment), baseline included; a lead over the "
            "baseline within the paired interval is a tie; the config is the winner at its median "
            "run",
            resampling=f"cv: {self.folds} folds" if self.folds else "holdout",
            tie=self.tie,
            configurations=configurations,
            effects=effects,
            ensemble_all=ensemble_scores([r for e in self.entries for r in e.runs]),
            wall_seconds=round(self.wall_seconds, 1),
            experiment=self.experiment,
            finished_at=utc_now(),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_record().to_dict()


def _searched(config: JoyfulConfig, baseline: JoyfulConfig) -> dict[str, Any]:
    """The settings of `config` that differ from the baseline's (seed aside)."""
    ours, theirs = config.to_dict(), baseline.to_dict()
    return {k: v for k, v in ours.items() if k != "seed" and theirs.get(k) != v}


def choose_confirmed_winner(entries: list[ConfigRuns]) -> str:
    """Highest mean dev score; a tie goes to the earlier entry (the baseline is first)."""
    scored = [
        (statistics.fmean(e.values().values()), -index, e.label)
        for index, e in enumerate(entries)
        if e.values()
    ]
    if not scored:
        raise RuntimeError("every confirmation run failed; see the errors in the Ray experiment")
    return max(scored)[2]
