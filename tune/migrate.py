"""`python -m tune.migrate`: bring stored studies up to date.

1. Study files written before the Optuna storage (schema 1) become `StudyRecord`s with their trials in an
   Optuna journal (below).
2. Best configs written before they recorded their data's shape (feature widths, labels present) get it,
   when the data file they name is at hand and unchanged (same sha256); so do their ensemble members' config
   files. `train.py --config` then refuses data of another shape.
3. Optuna studies written before the study told its own story (tune/study/story.py) get it: every trial's
   `epochs_run` and `stop_reason`, the budget and ranking rule, the search's winner, its confirmation and what
   was published, from the result records. Optuna does not change finished trials, so the study is rewritten
   into a new journal (the same trials, numbers, states, values, curves and times; other studies in the file
   untouched) that replaces the old file.

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

import dataclasses
import json
import sys
from typing import Any

from joyful.cli_parser import Parser
from joyful.config import JoyfulConfig, field_default, upgrade_config_values
from joyful.errors import UserError
from joyful.io import atomic_write, atomic_write_json, portable_path
from tune.records import STUDY_SCHEMA_VERSION, BestConfig, DataRef, MajorityLevel, StudyRecord, TrialRecord
from tune.records.store import ResultStore
from tune.space import load_space
from tune.stats.references import majority_level
from tune.study.storage import create_study, load_study, open_storage, space_fingerprint
from tune.study.story import creation_attrs, finished, record_story

__all__ = ["main", "migrate_study", "tell_story"]


def migrate_study(store: ResultStore, dataset: str) -> str:
    """Migrate one data set's study file; returns what was done, in one line."""
    path = store.study_path(dataset)
    old = json.loads(path.read_text())
    if old.get("schema_version") == STUDY_SCHEMA_VERSION:
        return f"{path}: already at schema {STUDY_SCHEMA_VERSION}"
    best = store.read_best(dataset)
    if best is None or best.study.space_file != old.get("space_file"):
        raise UserError(f"{path}: its best config (which holds the search's base config) is missing or comes from "
                        "another search; it cannot be migrated")
    space = load_space(old["space_file"], dataset)
    winner = JoyfulConfig.from_dict(upgrade_config_values(best.single_trial_best.config or best.config,
                                                          best.schema_version), source=f"{path}: winner config")
    base = winner.replace(**{name: field_default(name) for name in space.param_names()}, epochs=old["max_epochs"])
    fingerprint = space_fingerprint(space)
    storage_path = store.optuna_storage_path(dataset, best.data.sha256, fingerprint)
    name = best.study.name
    storage = open_storage(storage_path)
    attrs = {"dataset": dataset, "data_sha256": best.data.sha256, "space_fingerprint": fingerprint,
             "space_file": old["space_file"]}
    study = create_study(storage, name, old["mode"], attrs)
    study.add_trials([_optuna_trial(t) for t in old.get("optuna_trials", [])
                      if t["state"] not in ("RUNNING", "WAITING")])
    numbers = {t["user_attrs"].get("ray_trial_id"): t["number"] for t in old.get("optuna_trials", [])}
    resources = best.study.resources.budget_values() if best.study.resources else {}
    budget = dataclasses.replace(space.budget, num_samples=best.study.num_samples, max_epochs=old["max_epochs"],
                                 grace_period=old["grace_period"], reduction_factor=old["reduction_factor"],
                                 **resources)
    trials = [dataclasses.replace(TrialRecord.from_dict(row, space.param_names()),
                                  optuna_number=numbers.get(str(row["trial_id"])))
              for row in old["ray_trials"]]
    majority = _majority(base, best)
    record = StudyRecord(
        dataset=dataset, name=name, metric=old["metric"], mode=old["mode"], space_file=old["space_file"],
        space_sha256=best.study.space_sha256, space_fingerprint=fingerprint, data_path=best.data.path,
        data_sha256=best.data.sha256, base_config=base.to_dict(), budget=budget.check("migrated study"),
        optuna_storage=portable_path(storage_path) or "", optuna_study=name, trials=trials,
        majority=majority,
        started_at=best.study.started_at or "", ended_at=best.study.ended_at or "",
        search_seconds=float(best.study.search_seconds or 0.0))
    backup = path.with_name(path.name + ".v1")
    atomic_write(backup, lambda out: out.write(path.read_text()))
    store.write_study(record)
    return f"{path}: migrated to schema {STUDY_SCHEMA_VERSION}; Optuna study {name!r} in {storage_path}"


def record_data_facts(store: ResultStore, dataset: str) -> str:
    """Add the data facts (`DialogueData.facts`) to a best config and its members' config files that lack them."""
    import json

    from joyful.run import load_data  # torch: only when data facts are recorded

    best = store.read_best(dataset)
    path = store.best_config_path(dataset)
    if best is None:
        return f"{path}: no best config"
    if best.data.modality_dims is not None:
        return f"{path}: already records its data's shape"
    config = best.joyful_config()
    try:
        data = load_data(config.replace(data=best.data.path), None)
    except (UserError, OSError) as exc:
        return f"{path}: its data file is not at hand ({exc}); left as it is"
    if data.sha256 != best.data.sha256:
        return f"{path}: {best.data.path} is not the data it was tuned on any more (sha256 differs); left as it is"
    facts = DataRef.of(best.data.path, best.data.sha256, data.facts(config.modalities))
    for member in best.ensemble.members if best.ensemble else []:
        if member.config_file:
            member_path = path.parent / member.config_file
            document = json.loads(member_path.read_text())
            atomic_write_json(member_path, {**document, "data": facts.to_dict()})
    if not store.rewrite_best(dataset, best.replace(data=facts), best.written_at):
        return f"{path}: changed while it was being upgraded; run the migration again"
    return f"{path}: now records its data's shape (feature widths {facts.modality_dims}, labels present)"


def tell_story(store: ResultStore, dataset: str) -> str:
    """Give the data set's latest study its story (see the module docstring); returns what was done, in one line."""
    import optuna


    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not one INFO line per re-created study
    record = store.read_study(dataset)
    journal = store.journal_of(record)
    study = load_study(journal, record.optuna_study)
    if finished(study):
        return f"{journal}: study {record.optuna_study!r} already tells its story"
    by_id = {t.trial_id: t for t in record.trials}
    storage = open_storage(journal)
    rebuilt_path = journal.with_name(f".{journal.name}.rebuilt")
    rebuilt_path.unlink(missing_ok=True)
    rebuilt = open_storage(rebuilt_path)
    for summary in storage.get_all_studies():  # every study of the file, in order; only ours changes
        old = optuna.load_study(study_name=summary.study_name, storage=storage)
        new = optuna.create_study(storage=rebuilt, study_name=summary.study_name, directions=old.directions)
        attrs = dict(old.user_attrs)
        if summary.study_name == record.optuna_study:
            attrs = {**creation_attrs({}, attrs.get("sampler_seed"), record.budget), **attrs}
        for key, value in attrs.items():
            new.set_user_attr(key, value)
        for trial in old.get_trials(deepcopy=True):
            if not trial.state.is_finished():
                continue  # a WAITING or RUNNING trial of a finished search would never run
            own = by_id.get(trial.user_attrs.get("ray_trial_id")) if summary.study_name == record.optuna_study else None
            if own is not None:
                trial.user_attrs.update(epochs_run=own.epochs_run, stop_reason=own.stop_reason)
            new.add_trial(trial)
    rebuilt_path.replace(journal)
    best = store.read_best(dataset)
    published = None
    if best is not None and best.study.name == record.name:
        # The reason the search gave when it published, from the history (the latest entry of this search).
        entries = [h for h in store.history(dataset) if (h.get("study") or {}).get("name") == record.name]
        reason = entries[-1].get("reason", "") if entries else ""
        published = {"written": True, "reason": reason or "recorded afterwards by python -m tune.migrate",
                     "path": portable_path(store.best_config_path(dataset))}
    record_story(journal, record, best, published)
    return f"{journal}: study {record.optuna_study!r} now tells its story (winner, confirmation, published config)"


def _majority(base: JoyfulConfig, best: BestConfig) -> MajorityLevel | None:
    """Always the dev majority class, from the data when it is at hand and unchanged; else None (not guessed)."""
    from joyful.run import load_data  # torch: only when a migration needs the data

    try:
        data = load_data(base, None)
    except (UserError, OSError):
        return None
    return majority_level(data) if data.sha256 == best.data.sha256 else None


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
    p = Parser(prog="python -m tune.migrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--results-dir", default="results", help="results folder to migrate")
    args = p.parse_args(argv)
    store = ResultStore(args.results_dir)
    try:
        datasets = store.datasets_with_studies()
        if not datasets:
            raise UserError(f"no study files in {store.studies_dir()}")
        for dataset in datasets:
            print(migrate_study(store, dataset))
            print(record_data_facts(store, dataset))
            print(tell_story(store, dataset))
    except UserError as exc:
        print(f"migrate: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
