"""The published ensemble's files: each member's model file copied out of its Ray checkpoint into
the results folder (`ResultStore.model_path`), with the config that re-runs it beside it; chosen on
dev only."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from joyful.config import config_document
from joyful.io import atomic_write_json, display_path
from joyful.metrics import weighted_f1
from tune.records import (
    BestConfig,
    Ensemble,
    EnsembleMember,
    EnsembleOption,
    EnsembleScores,
    SingleRunScores,
)
from tune.records.store import ResultStore
from tune.stats.confirmation import ConfigRuns, ConfirmationResult, ensemble_scores

__all__ = ["keep_ensemble"]


def keep_ensemble(
    best: BestConfig,
    result: ConfirmationResult,
    store: ResultStore,
    refit: ConfigRuns | None = None,
) -> BestConfig:
    """`best` with its published ensemble: with `refit` (a cross-validated winner refit on all of
    train + dev) those runs; else chosen on dev - the confirmed winner's runs (its fold models with
    cross-validation), or every confirmed run (all configurations) when that ensemble scores higher
    on dev. Each member's model file is copied from the Ray experiment to `store.model_path`, with
    its config beside it (`train.py --config` re-runs the member), before the best config that
    names them is written. Unchanged when fewer than two runs left a model file."""
    # a Ray module: loaded only when an ensemble is kept
    from tune.runner.confirm_trial import MODEL_FILE

    def usable(runs: list) -> list:
        return [r for r in runs if r.ok and r.model_checkpoint and r.probabilities is not None]

    refits = usable(refit.runs) if refit is not None and result.folds else []
    if result.folds:
        scored = _fold_ensemble(result, [(result.winner, r) for r in usable(result.winner.runs)])
        if len(refits) >= 2:
            # Published by the space's rule, not chosen on dev (refits have none); the fold
            # models stay recorded beside them.
            scored = _refit_ensemble(refit, refits) + scored
    else:
        options = [
            (
                f"the {len(usable(result.winner.runs))} runs of {result.winner_label}, one per "
                "seed",
                [(result.winner, r) for r in usable(result.winner.runs)],
            ),
            (
                "every confirmed run, all configurations",
                [(e, r) for e in result.entries for r in usable(e.runs)],
            ),
        ]
        scored = [
            (ensemble_scores([r for _, r in members]), what, members) for what, members in options
        ]
        scored = [option for option in scored if option[0] is not None]
    if not scored:
        return best
    if len(refits) >= 2:
        scores, what, chosen = scored[0]
    else:
        # Chosen on dev only; a tie keeps the smaller ensemble (the winner's runs come first).
        scores, what, chosen = max(
            scored, key=lambda option: (option[0].dev_weighted_f1, -len(option[2]))
        )
    folder = store.best_config_path(best.dataset).parent
    members = []
    for entry, run in chosen:
        config = entry.config.replace(
            seed=run.seed, precision=run.precision or entry.config.precision
        )
        if run.fold:
            config = config.replace(cv_fold=run.fold)
        destination = store.model_path(
            best.dataset, best.study.name, _slug(entry.label), run.seed, run.fold
        )
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        _copy_out(run.model_checkpoint, MODEL_FILE, temporary)
        temporary.replace(destination)
        config_file = atomic_write_json(
            destination.with_suffix(".json"),
            {**config_document(config), "data": best.data.to_dict()},
        )
        members.append(
            EnsembleMember(
                label=entry.label,
                seed=run.seed,
                fold=run.fold,
                path=os.path.relpath(destination, folder),
                config_file=os.path.relpath(config_file, folder),
                megabytes=round(destination.stat().st_size / 2**20, 1),
                best_epoch=run.best_epoch,
                dev_weighted_f1=run.best_dev_weighted_f1,
                test_weighted_f1=run.test_weighted_f1,
                config=config.to_dict(),
            )
        )
    winner = best.confirmation.entry(result.winner_label) if best.confirmation else None
    ensemble = Ensemble(
        members_from=what,
        label=result.winner_label,
        members=members,
        dev_weighted_f1=scores.dev_weighted_f1,
        test_weighted_f1=scores.test_weighted_f1,
        not_chosen=[
            EnsembleOption(
                members_from=w,
                members=s.members,
                dev_weighted_f1=s.dev_weighted_f1,
                test_weighted_f1=s.test_weighted_f1,
            )
            for s, w, _ in scored
            if w != what
        ],
        single_run=SingleRunScores(
            dev_weighted_f1=winner and winner.dev_weighted_f1,
            test_weighted_f1=winner and winner.test_weighted_f1,
            raw_test_weighted_f1=winner and winner.raw_test_weighted_f1,
        ),
        rule=_rule(len(refits) >= 2, bool(result.folds)),
        rebuild_command="python -m joyful.predict --config "
        f"{display_path(store.best_config_path(best.dataset))} --rebuild",
    )
    return best.replace(ensemble=ensemble)


def _rule(refits: bool, folds: bool) -> str:
    """What the members of the published ensemble are, in words."""
    mean = "mean of the members' class probabilities; a member is "
    if refits:
        return mean + (
            "the confirmed configuration trained on all of train + dev for the epoch count chosen "
            "by cross-validation, keeping its last epoch, one per seed: refits (nothing selected "
            "on them; tested once each)"
        )
    if folds:
        return mean + (
            "one confirmation run of the published configuration on one fold (trained on the "
            "other folds of train + dev, its selected weights after the epoch count chosen by "
            "cross-validation): bagging over folds; its dev score is the out-of-fold one"
        )
    return mean + (
        "one confirmation run, its selected (averaged) weights at its best dev epoch; the members "
        "are the winner's runs or every confirmed run, whichever ensemble scores higher on dev"
    )


def _fold_ensemble(result: ConfirmationResult, members: list) -> list:
    """The published configuration's fold models as one ensemble (bagging), scored out of fold on
    train + dev (each utterance by the models that did not train on it) and on test (every member).
    """
    if len(members) < 2:
        return []
    runs = ConfigRuns(result.winner_label, result.winner.config, [r for _, r in members])
    dev, test = runs.predictions("dev"), runs.predictions("test")
    scores = EnsembleScores(
        members=len(members),
        seeds=sorted({r.seed for _, r in members}),
        dev_weighted_f1=weighted_f1(dev.labels, dev.predicted),
        test_weighted_f1=weighted_f1(test.labels, test.predicted),
    )
    folds = len({r.fold for _, r in members})
    seeds = len(scores.seeds)
    return [
        (
            scores,
            f"the {len(members)} fold models of {result.winner_label}, {folds} folds x {seeds} "
            "seed(s)",
            members,
        )
    ]


def _refit_ensemble(refit: ConfigRuns, runs: list) -> list:
    """The refits as one ensemble, scored on test only (every member trained on dev)."""
    test = refit.predictions("test")
    scores = EnsembleScores(
        members=len(runs),
        seeds=[r.seed for r in runs],
        dev_weighted_f1=None,
        test_weighted_f1=weighted_f1(test.labels, test.predicted),
    )
    return [
        (
            scores,
            f"the {len(runs)} refits of {refit.label.removesuffix(', refit')} on all of train + "
            "dev, one per seed",
            [(refit, r) for r in runs],
        )
    ]


def _slug(label: str) -> str:
    """A file-name form of a confirmation label ("rank 1: trial 3f2a" -> "rank-1-trial-3f2a")."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "run"


def _copy_out(checkpoint: str, name: str, destination: Path) -> None:
    """Copy file `name` of a Ray checkpoint (a local folder or a storage URI) to `destination`."""
    from ray import tune

    with tune.Checkpoint(checkpoint).as_directory() as folder:
        shutil.copyfile(Path(folder) / name, destination)
