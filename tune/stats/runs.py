"""A confirmation's runs and the statistics of pairs of them: one run per configuration, seed and
(with cross-validation) fold (`SeedRun`), a configuration's runs (`ConfigRuns`), their paired
differences, dialogue-level paired intervals and ensembles. Pure statistics: no Ray, no training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field as PydanticField

from joyful.config import JoyfulConfig
from joyful.metrics import weighted_f1
from tune.records import Comparison, EnsembleScores, RunRecord
from tune.stats.bootstrap import Predictions, RunSet, bootstrap_interval, bootstrap_runs, holm
from tune.stats.effects import RunCurve, mean_ci95

__all__ = [
    "ConfigRuns",
    "SeedRun",
    "comparison",
    "ensemble_scores",
    "key_label",
    "paired_difference",
    "paired_predictions",
    "paired_run_sets",
    "holm_family",
    "as_run_set",
]


# --- statistics -------------------------------------------------------------------------


def paired_difference(candidate: dict[Any, float], baseline: dict[Any, float]) -> dict[str, Any]:
    """Candidate minus baseline over the runs both have (keyed by seed and fold): mean, std, CI95,
    wins/ties/losses."""
    keys = sorted(set(candidate) & set(baseline))
    diffs = [candidate[k] - baseline[k] for k in keys]
    summary = mean_ci95(diffs)
    low = summary["ci95"][0] if summary["ci95"] else None
    high = summary["ci95"][1] if summary["ci95"] else None
    return {
        **summary,
        "runs": [key_label(k) for k in keys],
        "diffs": diffs,
        "wins": sum(d > 0 for d in diffs),
        "ties": sum(d == 0 for d in diffs),
        "losses": sum(d < 0 for d in diffs),
        # The interval tells whether the gain is more than seed noise (at 95%), either way.
        "ci_excludes_zero": low is not None and (low > 0 or high < 0),
    }


def key_label(key: Any) -> str:
    seed, fold = key if isinstance(key, tuple) else (key, 0)
    return f"seed {seed}" + (f", fold {fold}" if fold else "")


def ensemble_scores(runs: list[SeedRun]) -> EnsembleScores | None:
    """Dev and test weighted F1 of the mean class probabilities of `runs` (each run's selected
    model), or None when fewer than two runs kept their probabilities or their dev splits differ
    (folds). Test was evaluated once per run; averaging those evaluations chooses nothing on test.
    """
    kept = [r for r in runs if r.ok and r.probabilities is not None]
    if len(kept) < 2 or len({r.fold for r in kept}) > 1:
        return None
    scores = {}
    for split in ("dev", "test"):
        labels = kept[0].probabilities[f"{split}_labels"]
        mean = np.mean([r.probabilities[split] for r in kept], axis=0)
        scores[split] = weighted_f1(labels, mean.argmax(axis=1))
    return EnsembleScores(
        members=len(kept),
        seeds=[r.seed for r in kept],
        dev_weighted_f1=scores["dev"],
        test_weighted_f1=scores["test"],
    )


def comparison(
    name: str,
    first: str,
    second: str,
    split: str,
    a: Predictions | RunSet,
    b: Predictions | RunSet,
    n_classes: int,
) -> Comparison:
    """`first` - `second` on `split`, with its paired bootstrap interval: over dialogues, and over
    each side's runs when they are `RunSet`s (seed variance in the interval), with its p-value."""
    if isinstance(a, RunSet) or isinstance(b, RunSet):
        interval = bootstrap_runs(as_run_set(a), as_run_set(b), n_classes=n_classes)
    else:
        interval = bootstrap_interval(a, b, n_classes=n_classes)
    return Comparison(
        name=name,
        first=first,
        second=second,
        split=split,
        estimate=interval.estimate,
        ci95=[interval.low, interval.high],
        dialogues=interval.dialogues,
        replicates=interval.replicates,
        p_value=interval.p_value,
    )


def as_run_set(predictions: Predictions | RunSet) -> RunSet:
    """Fixed predictions (a reference model's) as a run set of one run (its labels one-hot)."""
    if isinstance(predictions, RunSet):
        return predictions
    classes = int(max(predictions.labels.max(), predictions.predicted.max())) + 1
    one_hot = np.eye(classes, dtype=np.float32)[predictions.predicted]
    return RunSet(predictions.labels, predictions.dialogue, one_hot[None])


def holm_family(comparisons: list[Comparison]) -> list[Comparison]:
    """`comparisons` as one family: each with its Holm-adjusted p-value and the family's size, so
    that the more comparisons a confirmation makes, the more each must show to be called a
    difference."""
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted = holm([comparisons[i].p_value for i in tested])
    found = list(comparisons)
    for index, p in zip(tested, adjusted, strict=True):
        found[index] = comparisons[index].replace(p_holm=p, family=len(tested))
    return found


# --- runs ----------------------------------------------------------------------------


class SeedRun(RunRecord):
    """One confirmation run as it finished (see `RunRecord`), with what is kept in memory only:
    where Ray stored its model file, and its class probabilities on its dev split and on test, with
    the dialogue lengths of each (`dev`, `dev_labels`, `dev_lengths`, `test`, ...): the ensembles
    and the intervals are built from them."""

    model_checkpoint: str | None = PydanticField(default=None, exclude=True)
    probabilities: dict[str, Any] | None = PydanticField(default=None, exclude=True, repr=False)

    def curve(self) -> RunCurve:
        return RunCurve(
            self.dev_weighted_f1, self.train_loss, self.train_nll, self.test_weighted_f1
        )

    def to_record(self) -> RunRecord:
        """The run as a best config stores it."""
        return RunRecord.from_dict(self.to_dict())


@dataclass
class ConfigRuns:
    """One confirmed configuration (the baseline, the defaults or a candidate) and its runs."""

    label: str
    config: JoyfulConfig
    runs: list[SeedRun]

    def values(self, key: str = "best_dev_weighted_f1") -> dict[tuple[int, int], float]:
        return {r.key: getattr(r, key) for r in self.runs if r.ok and getattr(r, key) is not None}

    def representative(self) -> SeedRun:
        """The run with the median dev score (the lower middle one for an even count): not the
        luckiest."""
        ranked = sorted(
            (r for r in self.runs if r.ok), key=lambda r: (r.best_dev_weighted_f1, r.key)
        )
        return ranked[(len(ranked) - 1) // 2]

    def _predicting_runs(self) -> list[SeedRun]:
        return [r for r in self.runs if r.ok and r.probabilities is not None]

    def scored_folds(self) -> set[int]:
        """The folds (0 on the dev split) this configuration has usable runs on."""
        return {r.fold or 0 for r in self._predicting_runs()}

    def predictions(self, split: str, folds: set[int] | None = None) -> Predictions | None:
        """This configuration's class predictions on `split` ("dev": its runs' dev splits,
        out-of-fold with cross-validation; or "test"): the mean probabilities of its runs on each
        utterance; None without them. `folds` keeps the runs on those folds only (0: the dev split).
        """
        kept = [r for r in self._predicting_runs() if folds is None or (r.fold or 0) in folds]
        if not kept:
            return None
        if split == "test":
            return _mean_predictions(kept, "test")
        by_fold: dict[int, list[SeedRun]] = {}
        for run in kept:
            by_fold.setdefault(run.fold or 0, []).append(run)
        parts = [_mean_predictions(by_fold[fold], "dev") for fold in sorted(by_fold)]
        offsets = np.cumsum([0] + [int(p.dialogue.max()) + 1 for p in parts[:-1]])
        return Predictions(
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.predicted for p in parts]),
            np.concatenate([p.dialogue + offset for p, offset in zip(parts, offsets, strict=True)]),
        )

    def run_set(self, split: str, folds: set[int] | None = None) -> RunSet | None:
        """This configuration's runs on `split`, as a `RunSet` for intervals with seed variance: on
        test every run; on the dev splits one out-of-fold prediction per seed (its runs on the
        `folds`, in fold order; a seed missing one of them is left out). None without runs."""
        kept = [r for r in self._predicting_runs() if folds is None or (r.fold or 0) in folds]
        if not kept:
            return None
        if split == "test":
            first = kept[0].probabilities
            return RunSet(
                np.asarray(first["test_labels"]),
                np.repeat(np.arange(len(first["test_lengths"])), first["test_lengths"]),
                np.stack([r.probabilities["test"] for r in kept]),
            )
        wanted = sorted({r.fold or 0 for r in kept})
        by_seed: dict[int, dict[int, SeedRun]] = {}
        for run in kept:
            by_seed.setdefault(run.seed, {})[run.fold or 0] = run
        complete = [runs for runs in by_seed.values() if sorted(runs) == wanted]
        if not complete:
            return None
        first = complete[0]
        lengths = [n for fold in wanted for n in first[fold].probabilities["dev_lengths"]]
        return RunSet(
            np.concatenate([first[fold].probabilities["dev_labels"] for fold in wanted]),
            np.repeat(np.arange(len(lengths)), lengths),
            np.stack(
                [
                    np.concatenate([runs[f].probabilities["dev"] for f in wanted])
                    for runs in complete
                ]
            ),
        )


def paired_run_sets(
    first: ConfigRuns, second: ConfigRuns, split: str
) -> tuple[RunSet | None, RunSet | None]:
    """Both configurations' runs on the same utterances: on test every run's; on the dev splits the
    folds both have usable runs on (a failed run of one leaves its fold out of the comparison, not
    out of alignment)."""
    if split == "test":
        return first.run_set("test"), second.run_set("test")
    common = first.scored_folds() & second.scored_folds()
    if not common:
        return None, None
    return first.run_set("dev", common), second.run_set("dev", common)


def paired_predictions(
    first: ConfigRuns, second: ConfigRuns, split: str
) -> tuple[Predictions | None, Predictions | None]:
    """Both configurations' predictions of the same utterances: on test every run's; on the dev
    splits the folds both have usable runs on (a failed run of one leaves its fold out of the
    comparison, not out of alignment)."""
    if split == "test":
        return first.predictions("test"), second.predictions("test")
    common = first.scored_folds() & second.scored_folds()
    if not common:
        return None, None
    return first.predictions("dev", common), second.predictions("dev", common)


def _mean_predictions(runs: list[SeedRun], split: str) -> Predictions:
    stored = runs[0].probabilities
    mean = np.mean([r.probabilities[split] for r in runs], axis=0)
    return Predictions.of(stored[f"{split}_labels"], mean, list(stored[f"{split}_lengths"]))
