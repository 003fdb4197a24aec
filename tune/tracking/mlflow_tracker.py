"""MLflow tracking of a search that a team can open: a parent run per search, a child run per trial.

* **Parent run** (named like the search): the fixed settings every trial shares (the base config,
  which with a child's searched settings reproduces that trial), the budget and the space; at the
  end the winner (tags `winner_trial`, `winner_optuna_number`), and the best-config JSON and the
  report (with its figures) as artifacts.
* **Child run** per trial (tag `mlflow.parentRunId`): every setting of the trial (params), which of
  them were searched (tag `searched`), its Optuna trial number, and when it ends its state as Optuna
  records it (COMPLETE / PRUNED / FAIL), `epochs_run` and `stop_reason`; per epoch (step = epoch)
  the scores and losses the trial reports. Ray's bookkeeping fields (pid, timestamps, iteration
  counters...) are not metrics. The winner's child run is tagged `winner = true`.

Browse it with `mlflow ui --backend-store-uri <uri>` (the `tracking` extra installs what `mlflow ui`
needs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from joyful.errors import UserError
from tune.common import finite
from tune.records import Outcome, classify, stop_reason
from tune.study.storage import load_study

__all__ = ["MLflowTracker", "TRACKED_METRICS"]

# What a trial reports that is worth a curve (nested dicts: every key under them).
TRACKED_METRICS = (
    "dev_weighted_f1",
    "raw_dev_weighted_f1",
    "dev_accuracy",
    "dev_loss",
    "best_dev_weighted_f1",
    "lr",
    "train_seconds",
    "train_loss",
    "gates",
)


class MLflowTracker(tune.Callback):
    """A Ray Tune callback (in the driver) writing the parent and child runs through
    `MlflowClient`."""

    def __init__(
        self,
        uri: str,
        dataset: str,
        search: str,
        base_config: dict[str, Any],
        budget: dict[str, Any],
        space_file: str,
        max_epochs: int,
        optuna_storage: str,
        artifact_location: str | None = None,
    ) -> None:
        self.uri, self.dataset, self.search, self.max_epochs = uri, dataset, search, max_epochs
        # Where a new experiment keeps its artifacts (None: the server's or MLflow's default,
        # ./mlruns of the working folder for a local store - so the local store gets a folder beside
        # it instead).
        self.artifact_location = artifact_location
        self.base_config, self.budget, self.space_file = dict(base_config), dict(budget), space_file
        self.optuna_storage = (
            optuna_storage  # the study's journal: Ray trial id -> Optuna trial number
        )
        self.client: Any = None
        self.parent_id = ""
        self.children: dict[str, str] = {}  # Ray trial id -> child run id

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment (for --resume); the client holds a database
        # engine.
        return {**self.__dict__, "client": None}

    def setup(self, **info: Any) -> None:
        """Connect, and find this search's parent run (a resumed search goes on with it) or start
        one."""
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        name = f"joyful-tune-{self.dataset}"
        experiment = self.client.get_experiment_by_name(name)
        self.experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(name, artifact_location=self.artifact_location)
        )
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`joyful.search` = '{self.search}' and tags.kind = 'search'",
        )
        if found:
            self.parent_id = found[0].info.run_id
            children = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`mlflow.parentRunId` = '{self.parent_id}'",
            )
            self.children = {run.data.tags["ray_trial_id"]: run.info.run_id for run in children}
            return
        parent = self.client.create_run(
            self.experiment_id,
            run_name=self.search,
            tags={"joyful.search": self.search, "dataset": self.dataset, "kind": "search"},
        )
        self.parent_id = parent.info.run_id
        self._log_params(
            self.parent_id,
            {
                **{f"fixed.{k}": v for k, v in self.base_config.items()},
                **{f"budget.{k}": v for k, v in self.budget.items()},
                "space_file": self.space_file,
            },
        )

    # --- Tune callbacks
    # ----------------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self.children:  # a retried or resumed trial keeps its run
            return
        searched = dict(trial.config)
        tags = {
            "mlflow.parentRunId": self.parent_id,
            "ray_trial_id": trial.trial_id,
            "kind": "trial",
            "searched": ",".join(sorted(searched)),
        }
        number = self._optuna_number(trial.trial_id)
        if number is not None:
            tags["optuna_number"] = str(number)
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{trial.trial_id}" + (f" (#{number})" if number is not None else ""),
            tags=tags,
        )
        self.children[trial.trial_id] = run.info.run_id
        self._log_params(run.info.run_id, {**self.base_config, **searched})

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        run_id = self.children.get(trial.trial_id)
        if run_id is None or "epoch" not in result:
            return
        metrics = {
            k: v
            for k, v in _flat(result).items()
            if k.split("/")[0] in TRACKED_METRICS and finite(v)
        }
        if metrics:
            from mlflow.entities import Metric

            step, now = int(result["epoch"]), _millis()
            self.client.log_batch(
                run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()]
            )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, error=True)

    def _end(self, trial: Any, error: bool) -> None:
        run_id = self.children.get(trial.trial_id)
        if run_id is None:
            return
        last = trial.last_result or {}
        outcome = classify(last, error, self.max_epochs)
        epochs = int(last.get("epoch", 0) or 0)
        tags = {
            "state": Outcome(outcome).optuna_state,
            "epochs_run": str(epochs),
            "stop_reason": stop_reason(
                outcome, epochs, self.max_epochs, str(last.get("stop_reason") or "")
            ),
        }
        number = self._optuna_number(trial.trial_id)
        if number is not None:
            tags["optuna_number"] = str(number)
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)
        self.client.set_terminated(
            run_id, status="FAILED" if error or outcome == "non_finite" else "FINISHED"
        )

    # --- after the search ------------------------------------------------------------------------
    def finish(self, winner: Any | None, artifacts: list[Path], status: str = "FINISHED") -> None:
        """Tag the winner (a TrialRecord), attach the best config and the report, and close the
        parent run."""
        if winner is not None:
            self.client.set_tag(self.parent_id, "winner_trial", winner.trial_id)
            if winner.optuna_number is not None:
                self.client.set_tag(
                    self.parent_id, "winner_optuna_number", str(winner.optuna_number)
                )
            self.client.log_metric(
                self.parent_id, "winner_best_dev_weighted_f1", winner.best_dev_weighted_f1
            )
            child = self.children.get(winner.trial_id)
            if child is not None:
                self.client.set_tag(child, "winner", "true")
        for path in artifacts:
            if path.is_dir():
                self.client.log_artifacts(self.parent_id, str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(self.parent_id, str(path))
        self.client.set_terminated(self.parent_id, status=status)

    def _optuna_number(self, trial_id: str) -> int | None:
        """The Optuna trial the searcher asked for this Ray trial (it records `ray_trial_id` when it
        asks)."""
        try:
            study = load_study(self.optuna_storage, self.search)
        except UserError:
            return None
        return next(
            (
                t.number
                for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get("ray_trial_id") == trial_id
            ),
            None,
        )

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(run_id, params=items[start : start + 100])


def _flat(result: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _millis() -> int:
    import time

    return int(time.time() * 1000)
