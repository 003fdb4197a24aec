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

from joyful.cli_parser import Parser
from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO, portable_path
from tune.common import utc_stamp
from tune.records import BestConfig, StudyRecord
from tune.records.store import ResultStore
from tune.runner.cluster import check_shared_storage, check_storage_path, check_trial_fits, start_ray
from tune.space import SearchSpace, load_space
from tune.stats.candidates import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_CONFIRM_TOP,
    candidates_from_study,
    confirmation_seeds,
    tuned_baseline,
)
from tune.stats.confirmation import print_confirmation
from tune.stats.references import judge, published_test, reference_scores
from tune.study.story import record_story

__all__ = ["main"]



# --- CLI --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tune/confirm.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="data set of a finished search")
    p.add_argument("--results-dir", default=str(REPO / "results"), help="results folder of the search")
    p.add_argument("--data", help="data pickle (default: the path recorded in the best config)")
    p.add_argument("--dataset-spec", help="JSON spec of a user-defined data set")
    p.add_argument("--confirm-top", type=int, default=DEFAULT_CONFIRM_TOP,
                   help="best configurations of the search to confirm besides the baseline")
    p.add_argument("--confirm-seeds", type=int, default=DEFAULT_CONFIRM_SEEDS,
                   help="seeds per configuration (base seed + 1000 + i; at least 2)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per run (default: the search's)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per run (default: the search's)")
    p.add_argument("--address", help="join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)")
    p.add_argument("--storage-path", default=str(REPO / "ray_results"), help="Ray experiment storage (shared by all nodes)")
    p.add_argument("--name", help="experiment name (default: confirm-<dataset>-<UTC time>)")
    p.add_argument("--quiet", action="store_true", help="no Ray progress tables")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["python", "tune/confirm.py", *argv])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan = plan_confirmation(args)
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_confirmation(plan, args)


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


def plan_confirmation(args: argparse.Namespace) -> ConfirmationPlan:
    """Everything checked before Ray starts: the search's records, the data fingerprint, the resources."""
    import dataclasses

    from joyful.run import load_data

    check_dataset_name(args.dataset)
    store = ResultStore(args.results_dir)
    best = store.read_best(args.dataset)
    if best is None:
        raise UserError(f"no best config at {store.best_config_path(args.dataset)}; run tune/search.py first")
    study = store.read_study(args.dataset)
    if study.name != best.study["name"]:
        raise UserError(f"{store.study_path(args.dataset)} (search {study.name!r}) and the best config (search "
                        f"{best.study['name']!r}) come from different searches; re-run the search")
    space = load_space(study.space_file, args.dataset)
    base = study.base()
    if args.data:
        base = base.replace(data=str(Path(args.data).resolve()))
    data = load_data(base, args.dataset_spec)
    if data.sha256 != study.data_sha256:
        raise UserError(f"{data.source} is not the data the search used (sha256 {data.sha256[:12]}… vs "
                        f"{study.data_sha256[:12]}…); pass --data with that file")
    resources = {k: v for k, v in (("cpus_per_trial", args.cpus_per_trial), ("gpus_per_trial", args.gpus_per_trial))
                 if v is not None}
    budget = dataclasses.replace(study.budget, **resources).check(flags=True)
    name = args.name or f"confirm-{args.dataset}-{utc_stamp()}"
    check_dataset_name(name)
    storage = check_storage_path(args.storage_path)
    if "://" not in storage and (Path(storage) / name).exists():
        raise UserError(f"experiment {Path(storage) / name} exists; pass another --name")
    return ConfirmationPlan(best, study, space, candidates_from_study(study.trials, space, base, args.confirm_top),
                            tuned_baseline(study.trials, space, base),
                            confirmation_seeds(base.seed, args.confirm_seeds), data, budget.cpus_per_trial,
                            budget.gpus_per_trial, storage, name)


def run_confirmation(plan: ConfirmationPlan, args: argparse.Namespace) -> int:
    import ray

    from tune.publish import confirmed, keep_ensemble, write_report
    from tune.runner.confirmation import confirm

    try:
        start_ray(args.address, quiet=args.quiet)
        check_trial_fits(plan.cpus_per_trial, plan.gpus_per_trial)
        check_shared_storage(plan.storage)
        print(f"confirming {len(plan.candidates)} configuration(s) and the baseline with seeds "
              f"{', '.join(map(str, plan.seeds))} -> {plan.storage}/{plan.name}")
        result = confirm(plan.candidates, plan.baseline, plan.seeds, data=plan.data,
                         cpus_per_trial=plan.cpus_per_trial, gpus_per_trial=plan.gpus_per_trial,
                         storage_path=plan.storage, name=plan.name, verbose=0 if args.quiet else 1,
                         proposal=plan.space.proposal)
        store = ResultStore(args.results_dir)
        best = keep_ensemble(confirmed(plan.best, result, plan.space, command=args.command), result, store)
        print_confirmation(best.confirmation)
        best = best.replace(references=reference_scores(plan.data, plan.baseline.modalities))
        verdict = judge(published_test(best), best.references)
        if verdict:
            print(f"{args.dataset}: {verdict}")
        outcome = store.update_confirmation(args.dataset, best)
        print(f"{args.dataset}: {'updated' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
        record_story(store.journal_of(plan.study), plan.study, best,
                     {"written": outcome.written, "reason": outcome.reason, "path": portable_path(outcome.path)})
        write_report(args.dataset, store)
        return 0 if outcome.written else 1
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    finally:
        if ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
