"""The Optuna side of a search: by default an Optuna journal file beside the results, or a database.

One journal file per (data set, data fingerprint, space fingerprint) —
`ResultStore.optuna_storage_path` names it — holds one Optuna study per search (named like the
search). Searches of the same data and space share the file, so a later search can warm-start from
the earlier ones; searches of other data or another space never meet in one file. With
`--optuna-storage URL` (``sqlite:///studies.db``, ``postgresql://host/db``, any URL Optuna's RDB
storage takes) a team's database holds the studies instead; there a warm start uses the studies
whose fingerprints match. Optuna's own tools read either:

    optuna-dashboard results/studies/<file>.journal
    optuna trials --storage results/studies/<file>.journal \
        --storage-class JournalFileBackend --study-name <search>

Every study carries user attributes `dataset`, `data_sha256`, `space_fingerprint` and `space_file`,
which a warm start checks before it uses a study.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from joyful.errors import UserError

if TYPE_CHECKING:
    import optuna

    from tune.space import SearchSpace

__all__ = [
    "FINGERPRINT_ATTRS",
    "STORAGE_CLASS",
    "check_same_search",
    "create_study",
    "is_url",
    "load_study",
    "open_storage",
    "space_fingerprint",
    "study_exists",
    "warm_start_trials",
]

STORAGE_CLASS = "JournalFileBackend"  # what `optuna ... --storage-class` needs for a journal file
FINGERPRINT_ATTRS = ("dataset", "data_sha256", "space_fingerprint")


def space_fingerprint(space: SearchSpace) -> str:
    """sha256 of what defines the searched values: metric, mode, fixed settings and parameters.

    Comments, the budget, the baseline and the proposal do not change it: trials sampled under two
    files with the same fingerprint are draws from the same space and may be learned from together.
    The resampling does (when the file fixes it).
    """
    parameters = [
        {
            "name": p.name,
            "type": p.type,
            "low": p.low,
            "high": p.high,
            "log": p.log,
            "step": p.step,
            "choices": list(p.choices) if p.choices is not None else None,
            "when": {k: list(v) for k, v in sorted((p.when or {}).items())},
        }
        for p in sorted(space.parameters, key=lambda p: p.name)
    ]
    # Resampling too: a trial's value on the dev split and its mean over folds are not one scale, so
    # studies of the two never share a journal nor warm-start each other.
    canonical = json.dumps(
        {
            "metric": space.metric,
            "mode": space.mode,
            "fixed": space.fixed,
            "parameters": parameters,
            **_resampling_key(space),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _resampling_key(space: SearchSpace) -> dict:
    """The resampling's part of the fingerprint; none for `auto`, which a search resolves from the
    data (and the data fingerprint separates)."""
    resampling = space.resampling
    if resampling.kind == "auto":
        return {}
    return {"resampling": [resampling.kind, resampling.folds if resampling.kind == "cv" else None]}


def is_url(storage: str | Path) -> bool:
    """Whether `storage` names a database (an Optuna RDB URL), not a journal file."""
    return "://" in str(storage)


def open_storage(storage: str | Path) -> optuna.storages.BaseStorage:
    """The journal file at `storage` (created on first write), or the database at URL `storage`."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if is_url(storage):
        try:
            return optuna.storages.RDBStorage(str(storage))
        except (
            Exception
        ) as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
            raise UserError(
                f"--optuna-storage {storage}: cannot open it ({str(exc).splitlines()[0][:200]})"
            ) from None
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # journal storage is stable since Optuna 4; older releases warn
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.JournalStorage(JournalFileBackend(str(storage)))


def create_study(
    storage: optuna.storages.BaseStorage, name: str, mode: str, attrs: dict[str, str]
) -> optuna.Study:
    """A new, empty study `name` carrying the search's fingerprints; refused if the name is
    taken."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one INFO line per created study
    if name in _study_names(storage):
        raise UserError(
            f"an Optuna study named {name!r} exists already in the search's storage; "
            "pass another --name (or --resume to continue that search)"
        )
    study = optuna.create_study(
        storage=storage, study_name=name, direction="maximize" if mode == "max" else "minimize"
    )
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    return study


def load_study(storage_path: str | Path, name: str) -> optuna.Study:
    """A stored study, read back with `optuna.load_study`; UserError when the file or the study is
    missing."""
    import optuna

    if not is_url(storage_path) and not Path(storage_path).is_file():
        raise UserError(f"{storage_path}: Optuna storage not found")
    storage = open_storage(storage_path)
    if name not in _study_names(storage):
        raise UserError(f"{storage_path}: no Optuna study named {name!r}")
    return optuna.load_study(study_name=name, storage=storage)


def check_same_search(storage_path: str | Path, attrs: dict[str, str]) -> None:
    """Refuse, with the reason, a journal whose studies were searched on other data or another space
    (a database holds many searches' studies: there `warm_start_trials` takes the matching ones
    only)."""
    storage = open_storage(storage_path)
    studies = storage.get_all_studies()
    if is_url(storage_path):
        if not any(
            all(s.user_attrs.get(k) == attrs[k] for k in FINGERPRINT_ATTRS) for s in studies
        ):
            raise UserError(
                f"--warm-start: {storage_path} holds no study of this data and search space to "
                "start from"
            )
        return
    if not studies:
        raise UserError(f"--warm-start: {storage_path} holds no study to start from")
    for study in studies:
        theirs = study.user_attrs
        for key, what in (
            ("dataset", "data set"),
            ("data_sha256", "data"),
            ("space_fingerprint", "search space"),
        ):
            if theirs.get(key) != attrs[key]:
                raise UserError(
                    f"--warm-start: study {study.study_name!r} in {storage_path} was searched on "
                    f"another {what} "
                    f"({key} {str(theirs.get(key))[:12]}… vs {attrs[key][:12]}…); its trials would "
                    "mislead the sampler, so a warm start needs the same data and search space"
                )


def warm_start_trials(
    storage: optuna.storages.BaseStorage, exclude: str, match: dict[str, str] | None = None
) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
    """The COMPLETE and PRUNED trials of every study in `storage` except `exclude` (and, with
    `match`, only of studies with those fingerprints), each marked with where it came from (user
    attribute `warm_start_from`), and the names of the studies they came from."""
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials, sources = [], []
    for study in storage.get_all_studies():
        if study.study_name == exclude:
            continue
        if match is not None and any(
            study.user_attrs.get(k) != match[k] for k in FINGERPRINT_ATTRS
        ):
            continue
        study_id = storage.get_study_id_from_name(study.study_name)
        taken = storage.get_all_trials(study_id, deepcopy=False, states=done)
        if taken:
            sources.append(study.study_name)
        for trial in taken:
            attrs = {k: v for k, v in trial.user_attrs.items() if k != "warm_start_from"}
            origin = trial.user_attrs.get("warm_start_from") or f"{study.study_name}#{trial.number}"
            trials.append(
                optuna.trial.create_trial(
                    state=trial.state,
                    value=trial.value,  # a pruned trial's value is its last intermediate one
                    params=trial.params,
                    distributions=trial.distributions,
                    intermediate_values=dict(trial.intermediate_values),
                    user_attrs={**attrs, "warm_start_from": origin},
                )
            )
    return trials, sources


def study_exists(storage_path: str | Path, name: str) -> bool:
    if not is_url(storage_path) and not Path(storage_path).is_file():
        return False
    return name in _study_names(open_storage(storage_path))


def _study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]
