"""`tune/confirm.py`: re-train the best configurations and the baseline over fresh seeds.

A single lucky trial is not a finding: a small dev split and the seed each move a score by
about as much as the hoped-for gain. Confirmation re-trains the top-K configurations of a
search by best dev F1, and the user's baseline, with S new seeds each (never the search's
seed), as parallel Ray trials, and reports per configuration the mean, std and 95% confidence
interval (t distribution) of the best dev weighted F1, and the paired difference to the
baseline (same seeds). The confirmed winner is the highest mean dev F1, the baseline included.

    python tune/confirm.py --dataset meld_text --confirm-top 1 --confirm-seeds 3

reads the study record and the best config of a finished search (`ResultStore`), runs the
confirmation (tune/runner/confirmation.py; statistics in tune/stats/confirmation.py), updates the best config
(`confirmation`, and `config` set to the confirmed winner at its median seed) through
`ResultStore.update_confirmation`, and rebuilds the report.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import portable_path
from tune.common import utc_stamp
from tune.options import ConfirmOptions, options_parser
from tune.records import BestConfig, StudyRecord
from tune.records.store import ResultStore
from tune.runner.cluster import check_shared_storage, check_storage_path, check_trial_fits, start_ray
from tune.space import SearchSpace, load_space
from tune.stats.candidates import candidates_from_study, confirmation_seeds, tuned_baseline
from tune.stats.confirmation import print_confirmation
from tune.stats.references import judge, published_test, reference_scores
from tune.study.story import record_story

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
        plan = plan_confirmation(options)
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_confirmation(plan, options, command=shlex.join(["python", "tune/confirm.py", *argv]))


@dataclass
class ConfirmationPlan:
    best: BestConfig
    study: StudyRecord
    space: SearchSpace
    candidates: list[tuple[str, JoyfulConfig]]
    baseline: JoyfulConfig
    seeds: list[int]
    data: DialogueData
    cpus_per_trial: float
    gpus_per_trial: float
    storage: str
    name: str


def plan_confirmation(options: ConfirmOptions) -> ConfirmationPlan:
    """Everything checked before Ray starts: the search's records, the data fingerprint, the resources."""
    import dataclasses

    from joyful.run import load_data  # torch: only once the arguments are fine

    store = ResultStore(options.results_dir)
    best = store.read_best(options.dataset)
    if best is None:
        raise UserError(f"no best config at {store.best_config_path(options.dataset)}; run tune/search.py first")
    study = store.read_study(options.dataset)
    if study.name != best.study.name:
        raise UserError(f"{store.study_path(options.dataset)} (search {study.name!r}) and the best config (search "
                        f"{best.study.name!r}) come from different searches; re-run the search")
    space = load_space(study.space_file, options.dataset)
    base = study.base()
    if options.data:
        base = base.replace(data=str(Path(options.data).resolve()))
    data = load_data(base, options.dataset_spec)
    if data.sha256 != study.data_sha256:
        raise UserError(f"{data.source} is not the data the search used (sha256 {data.sha256[:12]}… vs "
                        f"{study.data_sha256[:12]}…); pass --data with that file")
    budget = dataclasses.replace(study.budget, **options.resources()).check(flags=True)
    name = options.name or f"confirm-{options.dataset}-{utc_stamp()}"
    storage = check_storage_path(options.storage_path)
    if "://" not in storage and (Path(storage) / name).exists():
        raise UserError(f"experiment {Path(storage) / name} exists; pass another --name")
    return ConfirmationPlan(best, study, space, candidates_from_study(study.trials, space, base, options.confirm_top),
                            tuned_baseline(study.trials, space, base),
                            confirmation_seeds(base.seed, options.confirm_seeds), data, budget.cpus_per_trial,
                            budget.gpus_per_trial, storage, name)


def run_confirmation(plan: ConfirmationPlan, options: ConfirmOptions, command: str) -> int:
    """Run the planned confirmation and publish it; `command` is the command line the best config records."""
    import ray  # Ray and the publishing side (torch): only once the plan holds

    from tune.publish import confirmed, keep_ensemble, write_report
    from tune.runner.confirmation import confirm

    try:
        start_ray(options.address, quiet=options.quiet)
        check_trial_fits(plan.cpus_per_trial, plan.gpus_per_trial)
        check_shared_storage(plan.storage)
        print(f"confirming {len(plan.candidates)} configuration(s) and the baseline with seeds "
              f"{', '.join(map(str, plan.seeds))} -> {plan.storage}/{plan.name}")
        result = confirm(plan.candidates, plan.baseline, plan.seeds, data=plan.data,
                         cpus_per_trial=plan.cpus_per_trial, gpus_per_trial=plan.gpus_per_trial,
                         storage_path=plan.storage, name=plan.name, verbose=0 if options.quiet else 1,
                         proposal=plan.space.proposal)
        store = ResultStore(options.results_dir)
        best = keep_ensemble(confirmed(plan.best, result, plan.space, command=command), result, store)
        print_confirmation(best.confirmation)
        best = best.replace(references=reference_scores(plan.data, plan.baseline.modalities))
        verdict = judge(published_test(best), best.references)
        if verdict:
            print(f"{options.dataset}: {verdict}")
        outcome = store.update_confirmation(options.dataset, best)
        print(f"{options.dataset}: {'updated' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
        record_story(store.journal_of(plan.study), plan.study, best,
                     {"written": outcome.written, "reason": outcome.reason, "path": portable_path(outcome.path)})
        write_report(options.dataset, store)
        return 0 if outcome.written else 1
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    finally:
        if ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
