"""How many seeds a comparison needs: what each seed costs and how much it narrows the interval,
measured on stored runs of real data.

Reads the reference runs a search keeps per data file (`results/references/<dataset>/<key>.json`
and `.npz`: each reference trained over several seeds, with its class probabilities on test), and
for k = 1 .. all seeds computes the paired interval of "strong untuned setting - defaults" on test
with the runs redrawn in every replicate (tune/stats/bootstrap.py `bootstrap_runs`), each k over
every choice of k seeds (their mean width), and the single runs' seed-to-seed spread. Prints a table;
writes JSON with --out.

    python scripts/seed_count.py results/references/meld_text/<key>.json --out docs/seed_count_meld.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "references", help="a references file (results/references/<dataset>/*.json)"
    )
    parser.add_argument("--out", help="write the figures here (JSON)")
    args = parser.parse_args(argv)
    from joyful.metrics import weighted_f1
    from tune.stats.bootstrap import RunSet, bootstrap_runs

    path = Path(args.references)
    document = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz")) as stored:
        arrays = {k: stored[k] for k in stored.files}
    sets, seconds = {}, {}
    for i, entry in enumerate(document["entries"]):
        runs = range(len(entry["runs"]))
        labels, lengths = arrays[f"{i}_0_test_labels"], arrays[f"{i}_0_test_lengths"]
        dialogue = np.repeat(np.arange(len(lengths)), lengths)
        sets[entry["label"]] = RunSet(
            labels, dialogue, np.stack([arrays[f"{i}_{j}_test"] for j in runs])
        )
        seconds[entry["label"]] = statistics.fmean(r["wall_seconds"] for r in entry["runs"])
    (first, a), (second, b) = list(sets.items())[1], list(sets.items())[0]
    n_classes = int(a.labels.max()) + 1
    seeds = len(a.probabilities)
    single = {
        label: [
            weighted_f1(s.labels, s.probabilities[j].argmax(axis=1))
            for j in range(len(s.probabilities))
        ]
        for label, s in sets.items()
    }
    rows = []
    for k in range(1, seeds + 1):
        widths, estimates = [], []
        for chosen in itertools.combinations(range(seeds), k):
            pick = list(chosen)
            interval = bootstrap_runs(
                RunSet(a.labels, a.dialogue, a.probabilities[pick]),
                RunSet(b.labels, b.dialogue, b.probabilities[pick]),
                n_classes=n_classes,
            )
            widths.append(interval.high - interval.low)
            estimates.append(interval.estimate)
        rows.append(
            {
                "seeds": k,
                "mean_ci95_width": statistics.fmean(widths),
                "estimates": estimates,
                "seconds_per_configuration": k * statistics.fmean(seconds.values()),
            }
        )
        print(
            f"{k} seed(s): {first} - {second} on test, CI95 width {statistics.fmean(widths):.4f} "
            f"(mean over {len(widths)} choice(s) of seeds; estimates "
            f"{', '.join(f'{e:+.4f}' for e in estimates)}); {k} run(s) of "
            f"{statistics.fmean(seconds.values()) / 60:.1f} min per configuration"
        )
    for label, scores in single.items():
        spread = statistics.stdev(scores) if len(scores) > 1 else float("nan")
        print(
            f"{label}: single runs' test wF1 {', '.join(f'{s:.4f}' for s in scores)} "
            f"(s.d. {spread:.4f} across seeds)"
        )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "references": str(path),
                    "compared": [first, second],
                    "rows": rows,
                    "single_runs_test_weighted_f1": single,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
