"""The Markdown tables of a confirmation and of the expected effects, shared by the search's
printout (tune/publish.py) and the report (tune/reporting/confirmation.py). Tables only: the numbers
come from the records (tune/stats computes them)."""

from __future__ import annotations

from tune.common import fmt_value
from tune.records import Confirmation, EffectRow
from tune.stats.confirmation import key_label

__all__ = ["confirmation_markdown", "effects_markdown", "per_run_markdown", "print_confirmation"]


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "n/a" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def confirmation_markdown(confirmation: Confirmation) -> str:
    """The confirmation as a Markdown table (dev wF1 over runs, test wF1, paired difference to the
    baseline)."""
    lines = [
        "| configuration | settings that differ from the baseline | runs | dev wF1 mean ± std | "
        "dev wF1 CI95 | test wF1 mean ± std | diff to baseline (dev) | diff CI95 | runs won |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in confirmation.configurations:
        dev, test, diff = c.dev_weighted_f1, c.test_weighted_f1, c.paired_diff_to_baseline
        label = f"**{c.label}** (published)" if c.label == confirmation.winner else c.label
        settings = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(c.searched.items())) or "-"
        if diff is None:
            diff_cells = "-", "-", "-"
        else:
            won = f"{diff.wins}/{diff.n}"
            diff_cells = (
                f"{_f(diff.mean)}" if diff.mean is not None else "n/a",
                _ci(diff.ci95),
                won,
            )
        lines.append(
            f"| {label} | {settings} | {dev.n} | {_f(dev.mean)} ± {_f(dev.std)} | {_ci(dev.ci95)} "
            f"| {_f(test.mean)} ± {_f(test.std)} | {' | '.join(diff_cells)} |"
        )
    return "\n".join(lines)


def per_run_markdown(confirmation: Confirmation) -> str:
    """Every run's dev wF1 (and test wF1), a column per seed (and fold)."""
    keys = sorted({r.key for c in confirmation.configurations for r in c.runs})
    lines = [
        "| configuration | " + " | ".join(key_label(k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for c in confirmation.configurations:
        cells = []
        for seed, fold in keys:
            r = c.run_at(seed, fold)
            cells.append(
                "failed"
                if r is None or r.best_dev_weighted_f1 is None
                else f"{r.best_dev_weighted_f1:.4f} (test {r.test_weighted_f1:.4f})"
            )
        lines.append(f"| {c.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_confirmation(confirmation: Confirmation) -> None:
    where = "its held-out fold" if confirmation.resampling != "holdout" else "dev"
    print(
        f"\nconfirmation (each run's dev wF1 on {where}; seeds "
        + ", ".join(map(str, confirmation.seeds))
        + "):"
    )
    print(confirmation_markdown(confirmation))
    print()
    print(per_run_markdown(confirmation))
    effects = confirmation.effects
    if effects:
        print(f"\nexpected effects, {effects.compared} against the baseline:")
        print(
            effects_markdown(effects.rows, "winner" if effects.compared_is_winner else "compared")
        )
    if confirmation.tie:
        print(f"\n{confirmation.tie}")
    run = confirmation.winner_run
    print(f"\npublished configuration: {confirmation.winner} (config at {run.label})")


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _change(row: EffectRow) -> str:
    value = row.change
    if value is None:
        return "n/a"
    if row.change_unit == "points":
        return f"{value:+.2f} points"
    word = "lower" if row.measure != "epochs_to_95" else "faster"
    return (
        f"{abs(value) * 100:.1f}% "
        f"{word if value >= 0 else ('higher' if word == 'lower' else 'slower')}"
    )


def effects_markdown(rows: list[EffectRow], compared: str = "winner") -> str:
    """The effects rows as a Markdown table; `compared` heads the column of the configuration set
    against the baseline."""
    lines = [
        f"| effect | measure | baseline | {compared} | change | expected | seeds better | verdict "
        f"| {compared} - baseline, CI95 |",
        "|---|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for row in rows:
        digits = 2 if row.measure == "epochs_to_95" else 4
        interval = row.diff_ci95
        ci = f"[{interval[0]:+.{digits}f}, {interval[1]:+.{digits}f}]" if interval else "-"
        lines.append(
            f"| {row.effect} | {row.description} | {_number(row.baseline, digits)} | "
            f"{_number(row.winner, digits)} | {_change(row)} | {row.expected} | "
            f"{row.seeds_better or '-'} | {row.verdict} | {ci} |"
        )
    return "\n".join(lines)
