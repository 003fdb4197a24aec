"""Experiment tracking of a search, as options: MLflow (tune/tracking/mlflow_tracker.py) and W&B (Ray Tune's callback).

* MLflow (``--mlflow``, or ``--mlflow-uri URI``): a parent run per search (fixed settings, budget, the winner,
  the best config and the report as artifacts) and a child run per trial (every setting, the Optuna trial
  number, its state and stop reason, every epoch's scores and losses; step = epoch). Without a URI the store
  is a local SQLite file, ``<results-dir>/mlflow.db`` (no server needed); browse it with
  ``mlflow ui --backend-store-uri sqlite:///<results-dir>/mlflow.db``.
* W&B (``--wandb-project NAME``): one W&B run per trial in project NAME, grouped by data set;
  ``--wandb-mode offline`` writes the runs under ``<results-dir>/wandb`` without network
  (``wandb sync`` uploads them later).
* TensorBoard needs no option: Ray Tune writes event files with every reported metric into each trial's
  folder; ``tensorboard --logdir <storage-path>/<name>/<dataset>`` shows them.

Both trackers are optional extras (``pip install 'joyful-tune[tracking]'``); asking for one that is not
installed is refused before Ray starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

from joyful.errors import UserError
from joyful.io import portable_path
from tune.records.store import ResultStore

__all__ = ["add_tracking_arguments", "check_tracking", "finish_tracking", "mlflow_tracker", "tracking_callbacks"]

WANDB_MODES = ("online", "offline")


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("experiment tracking (optional extra: pip install 'joyful-tune[tracking]')")
    group.add_argument("--mlflow", action="store_true",
                       help="log every trial to MLflow (default store: <results-dir>/mlflow.db, SQLite, no server needed)")
    group.add_argument("--mlflow-uri", help="MLflow tracking URI (a server or a store); implies --mlflow")
    group.add_argument("--wandb-project", help="log every trial to this W&B project")
    group.add_argument("--wandb-mode", choices=WANDB_MODES, default="online",
                       help="offline: write W&B runs under <results-dir>/wandb without network (wandb sync uploads them)")


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


def check_tracking(args: argparse.Namespace) -> None:
    """Refuse a tracker whose package is not installed, before anything starts."""
    if (args.mlflow or args.mlflow_uri) and _missing("mlflow"):
        raise UserError("--mlflow needs MLflow: pip install 'joyful-tune[tracking]' (or mlflow-skinny)")
    if args.wandb_project and _missing("wandb"):
        raise UserError("--wandb-project needs W&B: pip install 'joyful-tune[tracking]' (or wandb)")
    if args.wandb_project is None and args.wandb_mode != "online":
        raise UserError("--wandb-mode goes with --wandb-project; name the project to log to")
    if args.wandb_project and args.wandb_mode == "online" and not _wandb_key_known():
        raise UserError("--wandb-project logs online, which needs WANDB_API_KEY (or `wandb login`); "
                        "or pass --wandb-mode offline and upload later with `wandb sync`")


def _wandb_key_known() -> bool:
    """Whether W&B has a key: the environment variable, or the ~/.netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def mlflow_uri(args: argparse.Namespace) -> str | None:
    """The MLflow tracking URI of this search, or None when MLflow is off."""
    if args.mlflow_uri:
        return args.mlflow_uri
    if args.mlflow:

        return ResultStore(args.results_dir).mlflow_uri()
    return None


def tracking_callbacks(args: argparse.Namespace, plan: Any, study_name: str) -> list[Any]:
    """Ray Tune callbacks for the trackers the user asked for (none by default); `plan` is the DatasetPlan."""
    callbacks: list[Any] = []
    tracker = mlflow_tracker(args, plan, study_name)
    if tracker is not None:
        callbacks.append(tracker)
    if args.wandb_project:
        from ray.air.integrations.wandb import WandbLoggerCallback


        folder = ResultStore(args.results_dir).wandb_dir().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        # Ray's callback asks for an API key unless WANDB_MODE says offline; its logging actors get the mode too.
        os.environ["WANDB_MODE"] = args.wandb_mode
        callbacks.append(WandbLoggerCallback(project=args.wandb_project, group=plan.dataset, mode=args.wandb_mode,
                                             dir=str(folder), tags=[study_name]))
    return callbacks


def mlflow_tracker(args: argparse.Namespace, plan: Any, study_name: str) -> Any:
    """The search's MLflow tracker (not yet connected), or None when MLflow is off."""
    import dataclasses


    uri = mlflow_uri(args)
    if not uri:
        return None
    from tune.tracking.mlflow_tracker import MLflowTracker

    store = ResultStore(args.results_dir)
    artifacts = None if args.mlflow_uri else store.mlflow_artifacts_dir().resolve().as_uri()
    return MLflowTracker(uri, plan.dataset, study_name, plan.base_config.to_dict(), dataclasses.asdict(plan.budget),
                         portable_path(plan.space.path) or "", plan.budget.max_epochs, str(plan.optuna_storage),
                         artifact_location=artifacts)


def finish_tracking(args: argparse.Namespace, plan: Any, study_name: str, winner: Any, artifacts: list[Path]) -> None:
    """After publishing: the tracker tags the winner, attaches `artifacts` and closes the search's parent run."""
    tracker = mlflow_tracker(args, plan, study_name)
    if tracker is not None:
        tracker.setup()
        tracker.finish(winner, artifacts)
