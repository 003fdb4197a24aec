"""A confirmation as it runs: per-seed runs, their statistics, the confirmed winner, and its tables.

Pure bookkeeping (no Ray, no training): `tune/runner/confirmation.py` fills a `ConfirmationResult`; its
`to_record` is the `tune.records.Confirmation` a best config stores (and reads back), which the tables and
the report read.
Every standard deviation is the sample one (n - 1); confidence intervals are 95% t-intervals.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field as PydanticField

from joyful.config import JoyfulConfig
from joyful.metrics import weighted_f1
from tune.common import fmt_value, utc_now
from tune.records import (
    CONFIRMATION_KIND,
    ConfigurationRecord,
    Confirmation,
    Effects,
    EnsembleScores,
    PairedDifference,
    RunRecord,
    Summary,
)
from tune.stats.effects import RunCurve, compare_effects, effects_markdown, mean_ci95, summarise_runs

__all__ = ["BASELINE_LABEL", "ConfigRuns", "ConfirmationResult", "SeedRun", "choose_confirmed_winner",
           "confirmation_markdown", "ensemble_scores", "mean_ci95", "paired_difference", "per_seed_markdown",
           "print_confirmation"]

BASELINE_LABEL = "baseline"


# --- statistics -------------------------------------------------------------------------


def paired_difference(candidate: dict[int, float], baseline: dict[int, float]) -> dict[str, Any]:
    """Candidate minus baseline over the seeds both have: mean, std, CI95, wins/ties/losses."""
    seeds = sorted(set(candidate) & set(baseline))
    diffs = [candidate[s] - baseline[s] for s in seeds]
    summary = mean_ci95(diffs)
    low = summary["ci95"][0] if summary["ci95"] else None
    high = summary["ci95"][1] if summary["ci95"] else None
    return {**summary, "seeds": seeds, "diffs": diffs, "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs),
            # The interval tells whether the gain is more than seed noise (at 95%), either way.
            "ci_excludes_zero": low is not None and (low > 0 or high < 0)}


def ensemble_scores(runs: list[SeedRun]) -> EnsembleScores | None:
    """Dev and test weighted F1 of the mean class probabilities of `runs` (each run's selected model), or None
    when fewer than two runs kept their probabilities. Test was evaluated once per run; averaging those
    evaluations chooses nothing on test."""
    kept = [r for r in runs if r.ok and r.probabilities is not None]
    if len(kept) < 2:
        return None
    scores = {}
    for split in ("dev", "test"):
        labels = kept[0].probabilities[f"{split}_labels"]
        mean = np.mean([r.probabilities[split] for r in kept], axis=0)
        scores[split] = weighted_f1(labels, mean.argmax(axis=1))
    return EnsembleScores(members=len(kept), seeds=[r.seed for r in kept], dev_weighted_f1=scores["dev"],
                          test_weighted_f1=scores["test"])


# --- results ----------------------------------------------------------------------------


class SeedRun(RunRecord):
    """One confirmation run as it finished (see `RunRecord`), with what is kept in memory only: where Ray stored
    its model file, and its dev/test class probabilities (the ensembles are built from them)."""

    model_checkpoint: str | None = PydanticField(default=None, exclude=True)
    probabilities: dict[str, Any] | None = PydanticField(default=None, exclude=True, repr=False)

    def curve(self) -> RunCurve:
        return RunCurve(self.dev_weighted_f1, self.train_loss, self.train_nll, self.test_weighted_f1)

    def to_record(self) -> RunRecord:
        """The run as a best config stores it."""
        return RunRecord.from_dict(self.to_dict())


@dataclass
class ConfigRuns:
    """One confirmed configuration (the baseline or a candidate) and its runs, one per seed."""

    label: str
    config: JoyfulConfig
    runs: list[SeedRun]

    def values(self, key: str = "best_dev_weighted_f1") -> dict[int, float]:
        return {r.seed: getattr(r, key) for r in self.runs if r.ok and getattr(r, key) is not None}

    def representative(self) -> SeedRun:
        """The run with the median best dev F1 (the lower middle one for an even count): not the luckiest."""
        ranked = sorted((r for r in self.runs if r.ok), key=lambda r: (r.best_dev_weighted_f1, r.seed))
        return ranked[(len(ranked) - 1) // 2]


@dataclass
class ConfirmationResult:
    """The confirmation of one search: every configuration's runs, their statistics and the winner."""

    seeds: list[int]
    entries: list[ConfigRuns]  # the baseline first, then the candidates in rank order
    winner_label: str
    wall_seconds: float = 0.0
    experiment: str = ""
    proposal: dict[str, Any] = field(default_factory=dict)  # the space's proposal (empty: none)

    def entry(self, label: str) -> ConfigRuns:
        return next(e for e in self.entries if e.label == label)

    @property
    def baseline(self) -> ConfigRuns:
        return self.entry(BASELINE_LABEL)

    @property
    def winner(self) -> ConfigRuns:
        return self.entry(self.winner_label)

    @property
    def winner_run(self) -> SeedRun:
        """The winner's median-seed run: the run `winner_config` reproduces."""
        return self.winner.representative()

    @property
    def winner_config(self) -> JoyfulConfig:
        """The confirmed winner, with the seed of its median run (so `train.py --config` reproduces that run)."""
        return self.winner.config.replace(seed=self.winner_run.seed)

    def effects_pair(self) -> tuple[ConfigRuns, ConfigRuns] | None:
        """(baseline, compared configuration): the proposal's best entry when the space has a proposal,
        else the winner, or the best candidate when the baseline won."""
        others = [e for e in self.entries if e.label != BASELINE_LABEL and e.values()]
        if not self.baseline.values() or not others:
            return None
        proposed = [e for e in others if self.proposal
                    and all(getattr(e.config, k) == v for k, v in self.proposal.items())]
        if proposed:
            return self.baseline, proposed[0]
        if self.winner_label != BASELINE_LABEL:
            return self.baseline, self.winner
        return self.baseline, max(others, key=lambda e: statistics.fmean(e.values().values()))

    def to_record(self) -> Confirmation:
        """The confirmation as the best config records it (statistics computed here, `finished_at` now)."""
        baseline = self.baseline
        configurations = [ConfigurationRecord(
            label=e.label, config=e.config.to_dict(), searched=_searched(e.config, baseline.config),
            dev_weighted_f1=Summary(**mean_ci95(list(e.values().values()))),
            test_weighted_f1=Summary(**mean_ci95(list(e.values("test_weighted_f1").values()))),
            raw_test_weighted_f1=Summary(**mean_ci95(list(e.values("raw_test_weighted_f1").values()))),
            ensemble=ensemble_scores(e.runs),
            paired_diff_to_baseline=None if e.label == BASELINE_LABEL
            else PairedDifference(**paired_difference(e.values(), baseline.values())),
            runs=[r.to_record() for r in e.runs]) for e in self.entries]
        pair = self.effects_pair()
        effects = None
        seeds = sorted(set(pair[0].values()) & set(pair[1].values())) if pair is not None else []
        if seeds:  # effects are measured on the seeds where both configurations have a run
            by_seed = [{r.seed: r for r in e.runs} for e in pair]
            effects = Effects(baseline=pair[0].label, compared=pair[1].label,
                              compared_is_winner=pair[1].label == self.winner_label, proposal=dict(self.proposal),
                              seeds=seeds,
                              rows=compare_effects(summarise_runs([by_seed[0][s].curve() for s in seeds]),
                                                   summarise_runs([by_seed[1][s].curve() for s in seeds])))
        return Confirmation(
            kind=CONFIRMATION_KIND, metric="dev_weighted_f1", seeds=list(self.seeds), winner=self.winner_label,
            winner_seed=self.winner_run.seed,
            selection="highest mean best dev weighted F1 over the seeds (baseline included); "
                      "the config is the winner at its median-seed run",
            configurations=configurations, effects=effects,
            ensemble_all=ensemble_scores([r for e in self.entries for r in e.runs]),
            wall_seconds=round(self.wall_seconds, 1), experiment=self.experiment, finished_at=utc_now())

    def to_dict(self) -> dict[str, Any]:
        return self.to_record().to_dict()


def _searched(config: JoyfulConfig, baseline: JoyfulConfig) -> dict[str, Any]:
    """The settings of `config` that differ from the baseline's (seed aside)."""
    ours, theirs = config.to_dict(), baseline.to_dict()
    return {k: v for k, v in ours.items() if k != "seed" and theirs.get(k) != v}


def choose_confirmed_winner(entries: list[ConfigRuns]) -> str:
    """Highest mean best dev F1; a tie goes to the earlier entry (the baseline is first)."""
    scored = [(statistics.fmean(e.values().values()), -index, e.label) for index, e in enumerate(entries)
              if e.values()]
    if not scored:
        raise RuntimeError("every confirmation run failed; see the errors in the Ray experiment")
    return max(scored)[2]


# --- tables -------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def confirmation_markdown(confirmation: Confirmation) -> str:
    """The confirmation as a Markdown table (dev wF1 over seeds, test wF1, paired difference to the baseline)."""
    lines = ["| configuration | settings that differ from the baseline | seeds | dev wF1 mean ± std | dev wF1 CI95 "
             "| test wF1 mean ± std | diff to baseline (dev) | diff CI95 | seeds won |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in confirmation.configurations:
        dev, test, diff = c.dev_weighted_f1, c.test_weighted_f1, c.paired_diff_to_baseline
        label = f"**{c.label}** (winner)" if c.label == confirmation.winner else c.label
        settings = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(c.searched.items())) or "-"
        if diff is None:
            diff_cells = "-", "-", "-"
        else:
            won = f"{diff.wins}/{diff.n}"
            diff_cells = (f"{_f(diff.mean)}" if diff.mean is not None else "n/a", _ci(diff.ci95), won)
        lines.append(f"| {label} | {settings} | {dev.n} | {_f(dev.mean)} ± {_f(dev.std)} | {_ci(dev.ci95)} "
                     f"| {_f(test.mean)} ± {_f(test.std)} | {' | '.join(diff_cells)} |")
    return "\n".join(lines)


def per_seed_markdown(confirmation: Confirmation) -> str:
    """Per-seed best dev wF1 (and test wF1) of every configuration."""
    seeds = confirmation.seeds
    lines = ["| configuration | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|" + "---:|" * len(seeds)]
    for c in confirmation.configurations:
        cells = []
        for s in seeds:
            r = c.run_at(s)
            cells.append("failed" if r is None or r.best_dev_weighted_f1 is None
                         else f"{r.best_dev_weighted_f1:.4f} (test {r.test_weighted_f1:.4f})")
        lines.append(f"| {c.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_confirmation(confirmation: Confirmation) -> None:
    print("\nconfirmation (best dev weighted F1 over seeds " + ", ".join(map(str, confirmation.seeds)) + "):")
    print(confirmation_markdown(confirmation))
    print()
    print(per_seed_markdown(confirmation))
    effects = confirmation.effects
    if effects:
        print(f"\nexpected effects, {effects.compared} against the baseline:")
        print(effects_markdown(effects.rows, "winner" if effects.compared_is_winner else "compared"))
    print(f"\nconfirmed winner: {confirmation.winner} (config at seed {confirmation.winner_seed})")
