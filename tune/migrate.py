"""`python -m tune.migrate`: bring study files written before the Optuna storage (schema 1) up to date.

A schema-1 `studies/<dataset>.json` held the Optuna trials exported to JSON and no base config. For
each one this writes the Optuna trials into the data set's journal (`ResultStore.optuna_storage_path`,
one study named like the search), rebuilds the base config from the best config's winner trial
(searched settings back to their defaults, the full epoch budget: how the search built it), records
the always-majority level when the data file is at hand, and replaces the file by a `StudyRecord`
(the old file is kept beside it as `<dataset>.json.v1`).
Files already at the current schema are left alone, so running it twice changes nothing.

    python -m tune.migrate --results-dir results
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from joyful.config import JoyfulConfig, field_default, upgrade_config_values
from joyful.errors import UserError
from joyful.io import atomic_write, portable_path
from tune.records import STUDY_SCHEMA_VERSION, StudyRecord, TrialRecord
from tune.results import ResultStore
from tune.space import load_space
from tune.study_storage import create_study, open_storage, space_fingerprint

__all__ = ["main", "migrate_study"]


def migrate_study(store: ResultStore, dataset: str) -> str:
    """Migrate one data set's study file; returns what was done, in one line."""
    path = store.study_path(dataset)
    old = json.loads(path.read_text())
    if old.get("schema_version") == STUDY_SCHEMA_VERSION:
        return f"{path}: already at schema {STUDY_SCHEMA_VERSION}"
    best = store.read_best(dataset)
    if best is None or best.study.get("space_file") != old.get("space_file"):
        raise UserError(f"{path}: its best config (which holds the search's base config) is missing or comes from "
                        "another search; it cannot be migrated")
    space = load_space(old["space_file"], dataset)
    winner = JoyfulConfig.from_dict(upgrade_config_values(best.single_trial_best.get("config") or best.config,
                                                          best.schema_version), source=f"{path}: winner config")
    base = winner.replace(**{name: field_default(name) for name in space.param_names()}, epochs=old["max_epochs"])
    fingerprint = space_fingerprint(space)
    storage_path = store.optuna_storage_path(dataset, best.data["sha256"], fingerprint)
    name = best.study["name"]
    storage = open_storage(storage_path)
    attrs = {"dataset": dataset, "data_sha256": best.data["sha256"], "space_fingerprint": fingerprint,
             "space_file": old["space_file"]}
    study = create_study(storage, name, old["mode"], attrs)
    study.add_trials([_optuna_trial(t) for t in old.get("optuna_trials", [])
                      if t["state"] not in ("RUNNING", "WAITING")])
    numbers = {t["user_attrs"].get("ray_trial_id"): t["number"] for t in old.get("optuna_trials", [])}
    resources = best.study.get("resources") or {}
    budget = dataclasses.replace(space.budget, num_samples=best.study["num_samples"], max_epochs=old["max_epochs"],
                                 grace_period=old["grace_period"], reduction_factor=old["reduction_factor"],
                                 **{k: v for k, v in resources.items() if k in ("cpus_per_trial", "gpus_per_trial",
                                                                                "max_concurrent")})
    trials = [dataclasses.replace(TrialRecord.from_dict(row, space.param_names()),
                                  optuna_number=numbers.get(str(row["trial_id"])))
              for row in old["ray_trials"]]
    majority = _majority(base, best)
    record = StudyRecord(
        dataset=dataset, name=name, metric=old["metric"], mode=old["mode"], space_file=old["space_file"],
        space_sha256=best.study["space_sha256"], space_fingerprint=fingerprint, data_path=best.data["path"],
        data_sha256=best.data["sha256"], base_config=base.to_dict(), budget=budget.check("migrated study"),
        optuna_storage=portable_path(storage_path) or "", optuna_study=name, trials=trials,
        majority=majority,
        started_at=best.study.get("started_at", ""), ended_at=best.study.get("ended_at", ""),
        search_seconds=float(best.study.get("search_seconds") or 0.0))
    backup = path.with_name(path.name + ".v1")
    atomic_write(backup, lambda out: out.write(path.read_text()))
    store.write_study(record)
    return f"{path}: migrated to schema {STUDY_SCHEMA_VERSION}; Optuna study {name!r} in {storage_path}"


def _majority(base: JoyfulConfig, best: Any) -> dict[str, Any] | None:
    """Always the dev majority class, from the data when it is at hand and unchanged; else None (not guessed)."""
    from joyful.run import load_data
    from tune.references import majority_level

    try:
        data = load_data(base, None)
    except (UserError, OSError):
        return None
    return majority_level(data) if data.sha256 == best.data["sha256"] else None


def _optuna_trial(item: dict[str, Any]) -> Any:
    import optuna

    state = optuna.trial.TrialState[item["state"]]
    return optuna.trial.create_trial(
        # A pruned trial keeps the last intermediate value Optuna gave it; a failed one has none.
        state=state, value=item["value"] if state != optuna.trial.TrialState.FAIL else None,
        params=item["params"],
        distributions={k: optuna.distributions.json_to_distribution(v) for k, v in item["distributions"].items()},
        intermediate_values={int(k): v for k, v in item["intermediate_values"].items()},
        user_attrs=item["user_attrs"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tune.migrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--results-dir", default="results", help="results folder to migrate")
    args = p.parse_args(argv)
    store = ResultStore(args.results_dir)
    try:
        datasets = store.datasets_with_studies()
        if not datasets:
            raise UserError(f"no study files in {store.studies_dir()}")
        for dataset in datasets:
            print(migrate_study(store, dataset))
    except UserError as exc:
        print(f"migrate: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
