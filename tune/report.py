"""`tune/report.py` / `joyful-report`: a readable report of a finished search, rebuilt from stored results.

    python tune/report.py --dataset meld_text            # results/reports/meld_text.md + PNGs
    python tune/report.py                                 # every data set with a study in results/studies/

Reads results/studies/<dataset>.json (the search's Optuna and Ray trials with their curves) and, when
present, results/best_configs/<dataset>.json (confirmation and expected effects). Writes
results/reports/<dataset>.md and PNG plots in results/reports/<dataset>/, atomically. Nothing is
retrained and no server is needed: the Markdown links the PNGs by relative path.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.errors import UserError
from joyful.io import atomic_write
from tune.plots import (
    asha_rungs,
    finite,
    plot_confirmation,
    plot_curves,
    plot_history,
    plot_importance,
    plot_parameter,
    present,
)
from tune.space import Parameter, SearchSpace, load_space

__all__ = ["build_report", "main", "parameter_importance"]

IMPORTANCE_SEED = 0  # fANOVA fits random forests

REPO = Path(__file__).resolve().parents[1]
TOP_CURVES = 5
ELIGIBLE = ("TERMINATED", "EARLY_STOPPED")


@dataclass
class Context:
    """What every section reads: the stored study and best config, the ranked trials and the space."""

    dataset: str
    study: dict[str, Any]
    best: dict[str, Any] | None
    figures_dir: Path
    space: SearchSpace | None
    space_note: str
    trials: list[dict[str, Any]]  # in start order
    ranked: list[dict[str, Any]]  # finished or ASHA-stopped with a score, best first
    figures: list[str] = field(default_factory=list)  # PNG files written

    @property
    def best_trial(self) -> dict[str, Any] | None:
        return self.ranked[0] if self.ranked else None

    def figure(self, file: str, caption: str) -> str:
        """Record a written PNG and return its Markdown image link (relative to the report)."""
        self.figures.append(file)
        return f"![{caption}]({self.figures_dir.name}/{file})"


# --- reading ------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run tune/search.py for this data set first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None


def _in_start_order(study: dict[str, Any]) -> list[dict[str, Any]]:
    """The Ray trials in the order they started: by their Optuna trial number where the study records it."""
    numbers = {t["user_attrs"]["ray_trial_id"]: t["number"] for t in study.get("optuna_trials", [])
               if "ray_trial_id" in t.get("user_attrs", {})}
    trials = list(study.get("ray_trials", []))
    return sorted(trials, key=lambda t: (numbers.get(str(t["trial_id"]), len(numbers) + trials.index(t)),
                                         trials.index(t)))


def _space(study: dict[str, Any], best: dict[str, Any] | None, dataset: str) -> tuple[SearchSpace | None, str]:
    """The search space the study recorded (or its best config did), and a note when it cannot be read."""
    path = study.get("space_file") or ((best or {}).get("study") or {}).get("space_file")
    if not path:
        return None, "the study records no search-space file; parameters are taken from the trials"
    try:
        return load_space(path, dataset), ""
    except UserError as exc:
        return None, f"the search-space file could not be read ({exc}); parameters are taken from the trials"

# --- importance ------------------------------------------------------------------------------


def parameter_importance(optuna_trials: list[dict[str, Any]], mode: str = "max") -> tuple[dict[str, float], str]:
    """(importances, "") from the study's completed trials, or ({}, the reason they cannot be computed).

    Optuna's `get_param_importances` with a seeded fANOVA evaluator; ASHA-stopped (pruned) trials have no final
    score and do not count.
    """
    import warnings

    import optuna

    from tune.collect import rebuild_study

    complete = [t for t in optuna_trials if t.get("state") == "COMPLETE" and finite(t.get("value"))]
    if len(complete) < 2:
        return {}, (f"{len(complete)} trial(s) completed all epochs; importance needs at least 2 "
                    "(ASHA-stopped trials have no final score)")
    if len({json.dumps(t["params"], sort_keys=True) for t in complete}) < 2:
        return {}, "the completed trials all share the same parameter values"
    if len({t["value"] for t in complete}) < 2:
        return {}, f"all {len(complete)} completed trials have the same score ({complete[0]['value']:.4f}); " \
                   "there is no difference to attribute to a parameter"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = rebuild_study(optuna_trials, direction="maximize" if mode == "max" else "minimize")
    try:
        with warnings.catch_warnings():  # few trials make Optuna warn on every call; the report states the count
            warnings.simplefilter("ignore")
            # Seeded, so that rebuilding the report from the same results gives the same numbers.
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=IMPORTANCE_SEED)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:
        return {}, f"Optuna could not compute it ({exc})"
    if not importances:
        return {}, "no parameter is shared by the completed trials"
    # Largest first; ties (often several 0.000) by name, so the table's order is stable too.
    return {k: float(v) for k, v in sorted(importances.items(), key=lambda kv: (-kv[1], kv[0]))}, ""


# --- the report -------------------------------------------------------------------------------


def build_report(dataset: str, results_dir: str | Path) -> Path:
    """Write results/reports/<dataset>.md and its PNGs from the stored study and best config."""
    from joyful.datasets import check_dataset_name
    from tune.results import ResultStore

    check_dataset_name(dataset)
    results_dir = Path(results_dir)
    store = ResultStore(results_dir)
    study = _read_json(results_dir / "studies" / f"{dataset}.json")
    best = store.read_best(dataset)
    trials = _in_start_order(study)
    eligible = [t for t in trials if t.get("status") in ELIGIBLE and finite(t.get("best_dev_weighted_f1"))]
    ranked = sorted(eligible, key=lambda t: (-t["best_dev_weighted_f1"], t.get("best_epoch") or 0, t["trial_id"]))
    space, space_note = _space(study, best, dataset)
    context = Context(dataset, study, best, store.report_path(dataset).with_suffix(""), space, space_note, trials,
                      ranked)
    sections = [_summary(context), _history(context), _parameters(context), _importance(context),
                _curves(context), _confirmation(context),
                f"---\nRebuild with `python tune/report.py --dataset {dataset} --results-dir "
                f"{_relative(str(results_dir))}` (no training).\n"]
    if context.figures_dir.is_dir():
        for stale in context.figures_dir.glob("*.png"):
            if stale.name not in context.figures:
                stale.unlink()
    path = store.report_path(dataset)
    atomic_write(path, lambda out: out.write("\n".join(section for section in sections if section)))
    return path


def _summary(c: Context) -> str:
    counts = {s: sum(t.get("status") == s for t in c.trials) for s in sorted({t.get("status") for t in c.trials})}
    lines = [f"- Trials: {len(c.trials)} (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")",
             f"- Budget: up to {c.study.get('max_epochs')} epochs a trial; ASHA grace period "
             f"{c.study.get('grace_period')}, reduction factor {c.study.get('reduction_factor')}",
             f"- Search space: `{_relative(c.study.get('space_file', '?'))}`",
             f"- Selection metric: `{c.study.get('metric')}` ({c.study.get('mode')}), dev split only"]
    if c.best is not None:
        lines.insert(0, f"- Data: `{_relative(c.best['data']['path'])}` (sha256 `{c.best['data']['sha256'][:16]}…`); "
                        f"modalities `{c.best['modalities']}`; study `{c.best['study']['name']}`")
    if c.best_trial is not None:
        t = c.best_trial
        lines.append(f"- Best single trial: `{t['trial_id']}`, best dev wF1 {t['best_dev_weighted_f1']:.4f} at epoch "
                     f"{t['best_epoch']} ({_params(t, _names(c.space, c.study))})")
    if not c.trials:
        lines.append("\nThe study holds no trials.")
    return f"# Search report: `{c.dataset}`\n\n" + "\n".join(lines) + "\n"


def _history(c: Context) -> str:
    if not c.trials:
        return ""
    plot_history(c.trials, c.figures_dir / "history.png")
    return "## Optimisation history\n\n" + c.figure("history.png", "optimisation history") + "\n"


def _parameters(c: Context) -> str:
    names = _names(c.space, c.study)
    if not names or not c.ranked:
        return ""
    section = ["## Dev F1 against each searched parameter\n"]
    if c.space_note:
        section.append(f"Note: {c.space_note}.\n")
    by_name = {p.name: p for p in c.space.parameters} if c.space else {}
    best = c.best_trial
    for name in names:
        parameter = by_name.get(name)
        section.append(f"### `{name}`\n")
        if not any(present(t.get(name)) for t in c.ranked):
            section.append(f"No finished trial used it{_condition(parameter)}.\n")
            continue
        file = f"param_{_slug(name)}.png"
        plot_parameter(name, parameter, c.ranked, best["trial_id"], c.figures_dir / file)
        value = best.get(name)
        if parameter is not None and present(value) and parameter.at_edge(value):
            section.append(f"**Warning:** the best trial's {name} = {_fmt(value)} lies at the edge of the searched "
                           f"range [{_fmt(parameter.low)}, {_fmt(parameter.high)}]; the optimum may lie outside it — "
                           "widen the range and search again.\n")
        section.append(c.figure(file, f"dev F1 against {name}") + "\n")
    return "\n".join(section)


def _importance(c: Context) -> str:
    importances, reason = parameter_importance(c.study.get("optuna_trials", []), c.study.get("mode", "max"))
    if not importances:
        return f"## Parameter importance\n\nNot computed: {reason}.\n"
    plot_importance(importances, c.figures_dir / "importance.png")
    table = "\n".join(f"| {k} | {v:.3f} |" for k, v in importances.items())
    completed = sum(t.get("state") == "COMPLETE" for t in c.study.get("optuna_trials", []))
    return ("## Parameter importance\n\nOptuna's `get_param_importances` (fANOVA, seeded) over the "
            f"{completed} trials that ran all epochs; few trials make it a rough guide only:\n\n"
            f"| parameter | importance |\n|---|---:|\n{table}\n\n"
            + c.figure("importance.png", "parameter importance") + "\n")


def _curves(c: Context) -> str:
    top = [t for t in c.ranked if t.get("curve")][:TOP_CURVES]
    if not top:
        return ""
    rungs = asha_rungs(int(c.study.get("max_epochs") or 1), int(c.study.get("grace_period") or 1),
                       int(c.study.get("reduction_factor") or 2))
    plot_curves(top, rungs, c.figures_dir / "curves.png")
    return (f"## Learning curves of the top {len(top)} trials\n\nDotted lines: ASHA rungs (epochs "
            f"{', '.join(map(str, rungs)) or 'none'}); a cross marks where ASHA stopped a trial.\n\n"
            + c.figure("curves.png", "learning curves") + "\n")


def _confirmation(c: Context) -> str:
    from tune.confirmation import confirmation_markdown, per_seed_markdown
    from tune.effects import effects_markdown

    confirmation = (c.best or {}).get("confirmation")
    if not confirmation:
        return ("## Confirmation over seeds\n\nNo confirmation recorded in the best config yet "
                f"(run `python tune/confirm.py --dataset {c.dataset}`).\n") + _references(c)
    plot_confirmation(confirmation, c.figures_dir / "confirmation.png")
    winner = confirmation["winner"]
    run = next(r for entry in confirmation["configurations"] if entry["label"] == winner for r in entry["runs"]
               if r["seed"] == confirmation["winner_seed"])
    search_seed = c.best["single_trial_best"].get("config", {}).get("seed", "?")
    section = [
        "## Confirmation over seeds\n",
        f"Each configuration re-trained with seeds {', '.join(map(str, confirmation['seeds']))} (the search used "
        f"seed {search_seed}). Best dev weighted F1 over seeds: mean ± sample std, 95% t-interval; the difference "
        "to the baseline is paired by seed. Test wF1 is evaluated once per run, at its best dev epoch.\n",
        confirmation_markdown(confirmation) + "\n",
        "Per seed, best dev wF1 (test wF1):\n\n" + per_seed_markdown(confirmation) + "\n",
        f"**Confirmed winner: {winner}** (the best config holds it at seed {run['seed']}, its median run: best dev "
        f"wF1 {run['best_dev_weighted_f1']:.4f} at epoch {run['best_epoch']}, test wF1 "
        f"{run['test_weighted_f1']:.4f}).\n",
        c.figure("confirmation.png", "confirmation over seeds") + "\n",
        _references(c),
        "## Expected effects\n",
    ]
    effects = confirmation.get("effects")
    if not effects:
        section.append("Not measured: the confirmation has no configuration besides the baseline with results.\n")
        return "\n".join(section)
    against = ("the confirmed winner" if effects["compared_is_winner"]
               else "the best other configuration (the baseline itself won the confirmation)")
    rows = effects["rows"]
    held = [r["description"] for r in rows if r["verdict"].startswith("held")]
    others = [r["description"] for r in rows if not r["verdict"].startswith("held")]
    section += [
        f"The user's expected effects, measured for the baseline against {against}, `{effects['compared']}`, over "
        f"seeds {', '.join(map(str, effects['seeds']))}. `seeds better` counts the seeds where its run beats the "
        "baseline's run of the same seed. These are point estimates over few seeds; see the CI95 above for F1.\n",
        effects_markdown(rows, "winner" if effects["compared_is_winner"] else "compared") + "\n",
        f"Held on this data: {', '.join(held) or 'none'}. Did not hold or not measurable: "
        f"{', '.join(others) or 'none'}.\n",
    ]
    return "\n".join(section)


def _references(c: Context) -> str:
    """The published winner's test wF1 against always-majority and a logistic regression on the same vectors."""
    from tune.references import judge, winner_test

    references = (c.best or {}).get("references")
    if not references:
        return ""
    lr, majority = references["logistic_regression"], references["majority"]
    line = judge(winner_test(c.best), references)
    return "\n".join([
        "## Against references\n",
        f"| model ({references['modalities']}) | dev wF1 | test wF1 |", "|---|---:|---:|",
        f"| always {majority['class']} | {majority['dev_weighted_f1']:.4f} | {majority['test_weighted_f1']:.4f} |",
        f"| logistic regression ({lr['features']}; C = {lr['C']}) | {lr['dev_weighted_f1']:.4f} "
        f"| {lr['test_weighted_f1']:.4f} |\n",
        f"**{line}.**\n" if line else "",
        _limits(c, lr) if line and "BELOW" in line else "",
    ])


def _limits(c: Context, lr: dict[str, Any]) -> str:
    """Measured facts about why the winner stays below the linear reference, from the confirmation runs."""
    import statistics

    confirmation = c.best["confirmation"]
    winner = next(e for e in confirmation["configurations"] if e["label"] == confirmation["winner"])
    runs = [r for e in confirmation["configurations"] for r in e["runs"] if r.get("best_dev_weighted_f1") is not None]
    if not runs:
        return ""
    best_epochs = [r["best_epoch"] for r in runs]
    swings = [abs(b - a) for r in runs for a, b in zip(r["dev_weighted_f1"][3:], r["dev_weighted_f1"][4:], strict=False)]
    transfer = [r["test_weighted_f1"] - r["best_dev_weighted_f1"] for r in winner["runs"]
                if r.get("test_weighted_f1") is not None]
    lines = ["### What limits the model (measured on the confirmation runs)\n",
             f"- Best dev epochs {min(best_epochs)}–{max(best_epochs)} (median {statistics.median(best_epochs):g}) of "
             f"{max(len(r['dev_weighted_f1']) for r in runs)}; from epoch 4 on, dev wF1 moves by "
             f"{statistics.fmean(swings):.3f} on average from one epoch to the next" if swings else "",
             f"- Dev to test: the winner's runs change by {statistics.fmean(transfer):+.4f} wF1 from their best dev "
             f"score to test; the logistic regression by {lr['test_weighted_f1'] - lr['dev_weighted_f1']:+.4f}"
             if transfer else ""]
    trial = c.best_trial
    single = next((e for e in confirmation["configurations"] if trial and str(trial["trial_id"]) in e["label"]), None)
    if single is not None and single["dev_weighted_f1"]["mean"] is not None:
        lines.append(f"- Selection on a small dev split: the search's best trial scored {trial['best_dev_weighted_f1']:.4f} "
                     f"on dev; re-trained with the confirmation seeds it averaged {single['dev_weighted_f1']['mean']:.4f}")
    return "\n".join(line for line in lines if line) + "\n"


def _condition(parameter: Parameter | None) -> str:
    if parameter is None or not parameter.when:
        return ""
    return " (searched only when " + " and ".join(
        f"{k} is {' or '.join(map(str, v))}" for k, v in parameter.when.items()) + ")"


def _names(space: SearchSpace | None, study: dict[str, Any]) -> list[str]:
    if space is not None:
        return space.param_names()
    names: list[str] = []
    for trial in study.get("optuna_trials", []):
        names += [n for n in trial.get("params", {}) if n not in names]
    return names


def _params(trial: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{n}={_fmt(trial[n])}" for n in names if present(trial.get(n)))


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


def datasets_with_studies(results_dir: Path) -> list[str]:
    return sorted(p.stem for p in (results_dir / "studies").glob("*.json"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tune/report.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", action="append", help="data set to report (repeatable; default: every stored study)")
    p.add_argument("--results-dir", default=str(REPO / "results"), help="results folder of the searches")
    args = p.parse_args(argv)
    results_dir = Path(args.results_dir)
    try:
        datasets = args.dataset or datasets_with_studies(results_dir)
        if not datasets:
            raise UserError(f"no studies in {results_dir / 'studies'}; run tune/search.py first")
        for dataset in datasets:
            print(f"wrote {build_report(dataset, results_dir)}")
    except UserError as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
