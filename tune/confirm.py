"""`tune/confirm.py`: confirm a finished search later - its best configurations and the baseline
re-trained over fresh seeds (and, with cross-validation, a fresh fold assignment).

A single lucky trial is not a finding: a small dev split and the seed each move a score by about as
much as the hoped-for gain. Confirmation re-trains the top-K configurations of a search, the space's
baseline at tuned nuisance settings and the proposal, with S new seeds each (never the search's
seed), scored as the search scored its trials (on the dev split, or on each fold of a fresh
assignment), as parallel Ray trials; it reports per configuration the mean, std and 95% t-interval
of the dev score and the paired difference to the baseline, the references (trained once per data
file), and the headline comparisons with intervals over dialogues and runs, Holm-adjusted. The
winner is the highest mean dev score; a lead over the baseline within its interval publishes the
baseline.

    python tune/confirm.py --dataset meld_text --confirm-top 1

reads the study record and the best config of a finished search (`ResultStore`), plans it as a
search whose best config exists (`SearchPlan.existing`), runs the publish stage (tune/publish.py)
from there, updates it (`confirmation`, `config` set to the confirmed winner at its median run, the
ensemble and the comparisons) through `ResultStore.update_confirmation`, and rebuilds the report.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.errors import UserError
from tune.common import utc_stamp
from tune.options import ConfirmOptions, SearchOptions, options_parser
from tune.plan import SearchPlan
from tune.publish import publish
from tune.records import StudyRecord
from tune.records.store import ResultStore
from tune.runner.cluster import (
    check_shared_storage,
    check_storage_path,
    check_trial_fits,
    start_ray,
)
from tune.space import Resampling, load_space

__all__ = ["main"]


# --- CLI --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from `ConfirmOptions` (tune/options.py)."""
    return options_parser(ConfirmOptions, "tune/confirm.py", __doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    namespace = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        options = ConfirmOptions.from_namespace(namespace)
        plan, record = plan_confirmation(
            options, command=shlex.join(["python", "tune/confirm.py", *argv])
        )
    except UserError as exc:
        print(f"tune/confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_confirmation(plan, record)


def plan_confirmation(options: ConfirmOptions, command: str) -> tuple[SearchPlan, StudyRecord]:
    """Everything checked before Ray starts: the search's records, the data fingerprint, the
    resources; the finished search as a plan whose `existing` best config the confirmation adds to.
    """
    import dataclasses

    from joyful.run import load_data  # torch: only once the arguments are fine
    from tune.stats.noise import split_noise
    from tune.stats.references import reference_models
    from tune.study.storage import load_study

    store = ResultStore(options.results_dir)
    best = store.read_best(options.dataset)
    if best is None:
        raise UserError(
            f"no best config at {store.best_config_path(options.dataset)}; run tune/search.py first"
        )
    study = store.read_study(options.dataset)
    if study.name != best.study.name:
        raise UserError(
            f"{store.study_path(options.dataset)} (search {study.name!r}) and the best config "
            f"(search {best.study.name!r}) come from different searches; re-run the search"
        )
    space = load_space(study.space_file, options.dataset)
    base = study.base()
    if options.data:
        base = base.replace(data=str(Path(options.data).resolve()))
    data = load_data(base, options.dataset_spec)
    if data.sha256 != study.data_sha256:
        raise UserError(
            f"{data.source} is not the data the search used (sha256 {data.sha256[:12]}… vs "
            f"{study.data_sha256[:12]}…); pass --data with that file"
        )
    budget = dataclasses.replace(study.budget, **options.resources()).check(flags=True)
    name = options.name or f"confirm-{options.dataset}-{utc_stamp()}"
    storage = check_storage_path(options.storage_path)
    if "://" not in storage and (Path(storage) / study.name / name).exists():
        raise UserError(
            f"experiment {Path(storage) / study.name / name} exists; pass another --name"
        )
    search_options = SearchOptions(
        dataset=(options.dataset,),
        results_dir=options.results_dir,
        dataset_spec=options.dataset_spec,
        storage_path=options.storage_path,
        name=name,
        confirm_top=options.confirm_top,
        confirm_seeds=options.confirm_seeds,
        quiet=options.quiet,
        no_rerun=True,
        address=options.address,
    )
    references = reference_models(data, base.modalities)
    resampling = Resampling(study.resampling.kind, study.resampling.folds or 5)
    plan = SearchPlan(
        options=search_options,
        name=study.name,
        storage=storage,
        store=store,
        dataset=options.dataset,
        space=space,
        budget=budget,
        strategy=study.strategy,
        base_config=base,
        data=data,
        space_fingerprint=study.space_fingerprint,
        optuna_storage=store.journal_of(study),
        majority=study.majority,
        references=references,
        noise=split_noise(data, references.dev["logistic regression"]),
        resampling=resampling,
        resampling_reason=study.resampling.reason,
        existing=best,
        command=command,
        confirmation_name=name,
    )
    plan.check_confirmation()
    plan.study = load_study(plan.optuna_storage, study.name)
    return plan, study


def run_confirmation(plan: SearchPlan, record: StudyRecord) -> int:
    """Run the planned confirmation through the publish stage (tune/publish.py)."""
    import ray  # Ray and the publishing side (torch): only once the plan holds

    try:
        start_ray(plan.options.address, quiet=plan.options.quiet)
        check_trial_fits(plan.budget.cpus_per_trial, plan.budget.gpus_per_trial)
        check_shared_storage(plan.storage)
        return publish(plan, record)
    except UserError as exc:
        print(f"tune/confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    finally:
        if ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
