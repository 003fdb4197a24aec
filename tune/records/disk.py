"""What a search leaves on disk: its size, and the trial checkpoints it no longer needs once it has
published.

A trial saves its whole training state (weights, optimizer moments, averaged weights, RNG) every
`checkpoint_every` epochs so that a retried or resumed trial continues exactly; Ray keeps the latest
one per trial (`num_to_keep=1`). That is hundreds of MB per trial at the default model size (about
300 MB on IEMOCAP-size data), and nothing reads it after the search has published: the best config
re-runs from its settings, the published ensemble's model files are copied to the results folder,
and `--resume` of a finished search does nothing. So the publish stage removes every `checkpoint_*`
folder of the search's experiments and keeps the small files (results, Ray's experiment state).

`tidy_disk` is the publish stage's last step on disk: the checkpoints go, and model files stay only
for the ensemble the best-config file publishes. Works on a local folder and on any pyarrow file
system (s3://, gs://), as Ray's storage does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joyful.errors import UserError
from joyful.io import display_path
from tune.records.store import PublishOutcome

__all__ = [
    "DiskUse",
    "check_confirmation_runs",
    "disk_use",
    "prune_checkpoints",
    "remove_experiment",
    "tidy_disk",
    "write_confirmation_runs",
]


@dataclass(frozen=True)
class DiskUse:
    """Bytes under a path, and how many of them are trial checkpoints."""

    total: int
    checkpoints: int

    def words(self) -> str:
        return f"{_mb(self.total)} ({_mb(self.checkpoints)} of it trial checkpoints)"


def _mb(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def _filesystem(path: str) -> tuple[object, str]:
    import pyarrow.fs

    if "://" in path:
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), path


def _entries(path: str) -> list:
    import pyarrow.fs

    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pyarrow.fs.FileType.NotFound:
        return []
    return filesystem.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))


def _in_checkpoint(entry_path: str) -> bool:
    return any(part.startswith("checkpoint_") for part in entry_path.split("/"))


def disk_use(path: str) -> DiskUse:
    """The bytes under `path` (0 when it does not exist), and those inside `checkpoint_*`
    folders."""
    import pyarrow.fs

    files = [e for e in _entries(path) if e.type == pyarrow.fs.FileType.File]
    return DiskUse(
        total=sum(e.size for e in files),
        checkpoints=sum(e.size for e in files if _in_checkpoint(e.path)),
    )


def prune_checkpoints(path: str) -> int:
    """Remove every `checkpoint_*` folder under `path` (a search's or a confirmation's experiment);
    returns the bytes freed."""
    import pyarrow.fs

    filesystem, _ = _filesystem(path)
    entries = _entries(path)
    freed = sum(
        e.size for e in entries if e.type == pyarrow.fs.FileType.File and _in_checkpoint(e.path)
    )
    folders = {
        e.path
        for e in entries
        if e.type == pyarrow.fs.FileType.Directory
        and e.path.rsplit("/", 1)[-1].startswith("checkpoint_")
    }
    for folder in sorted(folders):
        if not any(folder != other and folder.startswith(other + "/") for other in folders):
            filesystem.delete_dir(folder)
    return freed


def remove_experiment(path: str) -> int:
    """Remove the experiment folder `path` (a folder or a storage URI) if it exists; returns the
    bytes freed."""
    freed = disk_use(path).total
    if freed or _entries(path):
        filesystem, root = _filesystem(path)
        filesystem.delete_dir(root)
    return freed


def tidy_disk(plan: Any, outcome: PublishOutcome, confirmed: bool) -> None:
    """Keep what resume and re-runs need and nothing else, for the search of `plan` (a SearchPlan):
    the trial checkpoints of the search, its confirmation and its reference runs go (nothing reads
    them once it has published), and model files stay only for the ensemble the best-config file
    publishes - this search's when it was written (the ensemble it replaced loses its model files),
    else the earlier one (this search's copies go). Member configs stay: each re-runs its member."""
    # The references' runs are kept in the result store (records and probabilities), so their Ray
    # checkpoints go too.
    experiments = [plan.experiment] + (
        [
            f"{plan.experiment_root}/{plan.confirmation_name}",
            f"{plan.experiment_root}/{plan.dataset}-references",
        ]
        if confirmed
        else []
    )
    freed = sum(prune_checkpoints(path) for path in experiments)
    if confirmed:
        # The refits' runs are in the result store and their models in the results folder; the
        # whole experiment goes, so that a later confirmation (tune/confirm.py) trains its own
        # refits instead of resuming finished ones whose checkpoints are gone.
        freed += remove_experiment(f"{plan.experiment_root}/{plan.dataset}-refit")
    if outcome.written:
        replaced = outcome.previous
        unpublished = (
            replaced.study.name
            if replaced is not None and replaced.study.name != plan.name
            else None
        )
    else:
        unpublished = plan.name
    removed = plan.store.remove_model_files(plan.dataset, unpublished) if unpublished else 0
    after = disk_use(plan.experiment_root)
    models = disk_use(str(plan.store.models_dir(plan.dataset)))
    print(
        f"{plan.dataset}: disk: removed {_mb(freed)} of trial checkpoints and {_mb(removed)} of "
        f"unpublished model files; the search's experiment folder holds {_mb(after.total)}, "
        f"{display_path(plan.store.models_dir(plan.dataset))} {_mb(models.total)}"
    )


# What a confirmation experiment trains: its configurations and seeds (a resume must train the
# same).
RUNS_FILE = "confirmation_runs.json"


def write_confirmation_runs(
    experiment: str, configs: list[dict[str, Any]], seeds: list[int]
) -> None:
    """Record in `experiment` (a folder or a storage URI) what it confirms: configs and seeds."""
    filesystem, path = _filesystem(experiment)
    filesystem.create_dir(path, recursive=True)
    with filesystem.open_output_stream(f"{path}/{RUNS_FILE}") as out:
        out.write(json.dumps({"configs": configs, "seeds": seeds}).encode())


def check_confirmation_runs(
    experiment: str, configs: list[dict[str, Any]], seeds: list[int]
) -> None:
    """Refuse to resume a confirmation experiment that trains other configurations or seeds."""
    filesystem, path = _filesystem(experiment)
    try:
        with filesystem.open_input_stream(f"{path}/{RUNS_FILE}") as handle:
            stored = json.loads(handle.read())
    except (OSError, ValueError):
        stored = None
    if stored != json.loads(json.dumps({"configs": configs, "seeds": seeds})):
        raise UserError(
            f"{experiment} holds a confirmation of other configurations or seeds than this one; "
            "remove that folder to start this confirmation afresh"
        )
