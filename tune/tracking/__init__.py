"""Experiment tracking of a search: MLflow (tune/tracking/mlflow_tracker.py) and W&B (Ray Tune's
callback).

* MLflow (``--mlflow``, or ``--mlflow-uri URI``): a parent run per search (fixed settings, budget,
  the winner, the best config and the report as artifacts) and a child run per trial (every setting,
  the Optuna trial number, its state and stop reason, every epoch's scores and losses; step =
  epoch). Without a URI the store is a local SQLite file, ``<results-dir>/mlflow.db`` (no server
  needed); browse it with ``mlflow ui --backend-store-uri sqlite:///<results-dir>/mlflow.db``.
* W&B (``--wandb-project NAME``): one W&B run per trial in project NAME, grouped by data set;
  ``--wandb-mode offline`` writes the runs under ``<results-dir>/wandb`` without network (``wandb
  sync`` uploads them later).
* TensorBoard needs no option: Ray Tune writes event files with every reported metric into each
  trial's folder; ``tensorboard --logdir <storage-path>/<name>/<dataset>`` shows them.

Both trackers are optional extras (``pip install 'joyful-tune[tracking]'``); asking for one that is
not installed is refused before Ray starts."""

from tune.tracking.trackers import (
    WANDB_MODES,
    Tracking,
    check_tracking,
    finish_tracking,
    make_mlflow_tracker,
    mlflow_uri,
    tracking_callbacks,
)

__all__ = [
    "WANDB_MODES",
    "Tracking",
    "check_tracking",
    "finish_tracking",
    "make_mlflow_tracker",
    "mlflow_uri",
    "tracking_callbacks",
]
