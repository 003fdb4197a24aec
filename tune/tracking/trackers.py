"""Which trackers a search logs to (`Tracking`), the checks before a search starts, and the Ray Tune
callbacks and the closing of a search's MLflow run (the tracker itself:
tune/tracking/mlflow_tracker.py)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from joyful.errors import UserError
from joyful.io import portable_path
from tune.records.store import ResultStore

__all__ = [
    "WANDB_MODES",
    "Tracking",
    "check_tracking",
    "finish_tracking",
    "make_mlflow_tracker",
    "mlflow_uri",
    "tracking_callbacks",
]

WANDB_MODES = ("online", "offline")


@dataclass(frozen=True)
class Tracking:
    """The trackers a search logs to, as its flags (tune/options.py) name them, and the results
    folder that holds the local stores (MLflow's SQLite file and artifacts, W&B's offline runs)."""

    results_dir: str
    mlflow: bool
    mlflow_uri: str | None
    wandb_project: str | None
    wandb_mode: str  # one of WANDB_MODES


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def check_tracking(tracking: Tracking) -> None:
    """Refuse a tracker whose package is not installed, or W&B online without a key, before anything
    starts. (That --wandb-mode goes with --wandb-project, `SearchOptions` checks.)"""
    if (tracking.mlflow or tracking.mlflow_uri) and _missing("mlflow"):
        raise UserError(
            "--mlflow needs MLflow: pip install 'joyful-tune[tracking]' (or mlflow-skinny)"
        )
    if tracking.wandb_project and _missing("wandb"):
        raise UserError("--wandb-project needs W&B: pip install 'joyful-tune[tracking]' (or wandb)")
    if tracking.wandb_project and tracking.wandb_mode == "online" and not _wandb_key_known():
        raise UserError(
            "--wandb-project logs online, which needs WANDB_API_KEY (or `wandb login`); "
            "or pass --wandb-mode offline and upload later with `wandb sync`"
        )


def _wandb_key_known() -> bool:
    """Whether W&B has a key: the environment variable, or the ~/.netrc entry `wandb login`
    writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def mlflow_uri(tracking: Tracking) -> str | None:
    """The MLflow tracking URI of this search, or None when MLflow is off."""
    if tracking.mlflow_uri:
        return tracking.mlflow_uri
    if tracking.mlflow:
        return ResultStore(tracking.results_dir).mlflow_uri()
    return None


def tracking_callbacks(plan: Any) -> list[Any]:
    """Ray Tune callbacks for the trackers the user asked for (none by default); `plan` is the
    SearchPlan."""
    callbacks: list[Any] = []
    tracking, study_name = plan.options.tracking, plan.name
    tracker = make_mlflow_tracker(
        tracking,
        plan.dataset,
        study_name,
        plan.base_config.to_dict(),
        asdict(plan.budget),
        portable_path(plan.space.path) or "",
        str(plan.optuna_storage),
    )
    if tracker is not None:
        callbacks.append(tracker)
    if tracking.wandb_project:
        # Ray's W&B integration: imported only when asked for (Ray and, through it, wandb load
        # late).
        from ray.air.integrations.wandb import WandbLoggerCallback

        folder = ResultStore(tracking.results_dir).wandb_dir().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        # Ray's callback asks for an API key unless WANDB_MODE says offline; its logging actors get
        # the mode too.
        os.environ["WANDB_MODE"] = tracking.wandb_mode
        callbacks.append(
            WandbLoggerCallback(
                project=tracking.wandb_project,
                group=plan.dataset,
                mode=tracking.wandb_mode,
                dir=str(folder),
                tags=[study_name],
            )
        )
    return callbacks


def make_mlflow_tracker(
    tracking: Tracking,
    dataset: str,
    study_name: str,
    base_config: dict[str, Any],
    budget: dict[str, Any],
    space_file: str,
    optuna_storage: str,
) -> Any:
    """The search's MLflow tracker (not yet connected), or None when MLflow is off.

    Not named `mlflow_tracker`: importing the submodule of that name sets the package's attribute
    `mlflow_tracker` to the module, which would replace a function of that name here."""
    uri = mlflow_uri(tracking)
    if not uri:
        return None
    # The tracker is a Ray Tune callback: Ray loads only once a search runs.
    from tune.tracking.mlflow_tracker import MLflowTracker

    store = ResultStore(tracking.results_dir)
    artifacts = None if tracking.mlflow_uri else store.mlflow_artifacts_dir().resolve().as_uri()
    return MLflowTracker(
        uri,
        dataset,
        study_name,
        base_config,
        budget,
        space_file,
        budget["max_epochs"],
        optuna_storage,
        artifact_location=artifacts,
    )


def finish_tracking(tracking: Tracking, study: Any, winner: Any, artifacts: list[Path]) -> None:
    """After publishing: the tracker tags the winner, attaches `artifacts` and closes the search's
    parent run; `study` is the search's StudyRecord."""
    tracker = make_mlflow_tracker(
        tracking,
        study.dataset,
        study.name,
        study.base_config,
        asdict(study.budget),
        study.space_file,
        study.optuna_storage,
    )
    if tracker is not None:
        tracker.setup()
        tracker.finish(winner, artifacts)
