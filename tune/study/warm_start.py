"""What a warm-started search learns from: the finished trials of earlier searches of the same data
and space (in its journal, or the database given) - learned from, never re-run - and the data set's
earlier winners, proposed first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joyful.errors import UserError
from joyful.io import portable_path
from tune.records import WarmStartSummary
from tune.records.store import ResultStore
from tune.space import SearchSpace
from tune.study.storage import check_same_search, is_url, open_storage, warm_start_trials

__all__ = ["WarmStart", "plan_warm_start"]


@dataclass
class WarmStart:
    """Where a warm-started search learns from: earlier trials (not re-run) and earlier winners (run
    first)."""

    storage: Path | str
    studies: list[str]
    trials: list[Any]  # optuna FrozenTrials, COMPLETE or PRUNED, marked `warm_start_from`
    proposed: list[dict[str, Any]]  # earlier winners of the data set, as points of this space

    def summary(self) -> WarmStartSummary:
        """What the study record keeps of it (the trials themselves live in the Optuna storage)."""
        return WarmStartSummary(
            storage=portable_path(self.storage),
            studies=list(self.studies),
            trials=len(self.trials),
            proposed=list(self.proposed),
        )


def plan_warm_start(
    source: str,
    *,
    dataset: str,
    space: SearchSpace,
    fingerprints: dict[str, str],
    optuna_storage: Path | str,
    store: ResultStore,
    exclude: str | None,
) -> WarmStart:
    """The earlier trials and winners a warm start uses, or UserError saying why there are none to
    use.

    `source` is "auto" (the stored searches of this data and space: the journal beside the results,
    or the --optuna-storage database) or an Optuna journal file or database URL.
    """
    storage: Path | str = optuna_storage if source == "auto" else source
    if not is_url(storage):
        storage = Path(storage)
        if not storage.is_file():
            raise UserError(
                _no_earlier_search(dataset, fingerprints, store)
                if source == "auto"
                else f"--warm-start {source}: no such Optuna journal file"
            )
    check_same_search(storage, fingerprints)
    trials, studies = warm_start_trials(
        open_storage(storage),
        exclude=exclude or "",
        match=fingerprints if is_url(storage) else None,
    )
    if not trials:
        raise UserError(
            f"--warm-start: {storage} holds no completed or ASHA-stopped trial to start from"
        )
    learned = [t.params for t in trials]
    proposed: list[dict[str, Any]] = []
    for config in _earlier_winners(dataset, store):
        point = space.point_from(config)
        if (
            point is not None
            and point not in learned
            and point not in proposed
            and point != space.baseline_point()
        ):
            proposed.append(point)
    return WarmStart(storage, studies, trials, proposed)


def _earlier_winners(dataset: str, store: ResultStore) -> list[dict[str, Any]]:
    """Configs of the data set's published and confirmed winners, the latest first (any data, any
    space)."""
    return [
        record["config"]
        for record in reversed(store.history(dataset))
        if record.get("outcome") in ("published", "confirmed")
        and isinstance(record.get("config"), dict)
    ]


def _no_earlier_search(dataset: str, fingerprints: dict[str, str], store: ResultStore) -> str:
    others = store.optuna_storages(dataset)
    if not others:
        return (
            f"--warm-start: no earlier search of {dataset} in {store.studies_dir()} to start from; "
            "run one without --warm-start first"
        )
    data_tag = f"data-{fingerprints['data_sha256'][:12]}"
    space_tag = f"space-{fingerprints['space_fingerprint'][:12]}"
    reasons = []
    for path in others:
        differs = [
            what
            for tag, what in ((data_tag, "other data"), (space_tag, "another search space"))
            if tag not in path.name
        ]
        reasons.append(f"{' and '.join(differs)} ({path.name})")
    return (
        f"--warm-start: no earlier search of {dataset} on this data and space ({data_tag}, "
        f"{space_tag}); "
        f"the stored ones were searched on {'; '.join(reasons)}, and their trials would mislead "
        "the sampler"
    )
