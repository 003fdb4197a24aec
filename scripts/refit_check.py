"""Which published model to build from a cross-validated winner: its fold models (each trained on K-1 of
K folds) or the same configuration refit on all the data (K seeds), decided on dev evidence only.

On a data set with its own dev split, the data's dev split plays the part of unseen data and its test
split is never read: the K fold models are trained by cross-validation over the train split alone, the
K refits on all of it, each for the same epoch count (the configuration's), and both ensembles (the mean
of their members' class probabilities) are scored on dev, with a paired interval over dev dialogues
and members. Prints both scores, the difference and its interval; writes them as JSON with --out.

    python scripts/refit_check.py --config results/best_configs/meld_text.json \\
        --data ../shared/data/meld_text/data_meld.pkl --out docs/refit_meld.json

Several --data files (e.g. the overtuning benchmark's draws) are pooled: each trains its own members,
and the interval resamples the dev dialogues of all of them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

_WORKER: dict = {}


def _start(data_path: str, config: dict) -> None:
    import torch

    from joyful.config import JoyfulConfig
    from joyful.data.dialogues import DialogueData
    from joyful.run import load_data

    torch.set_num_threads(1)
    base = JoyfulConfig.from_dict({**config, "data": data_path})
    data = load_data(base)
    # The dev split stands for unseen data: it becomes the only split the runs are tested on.
    inner = DialogueData(
        data.spec,
        {"train": data.splits["train"], "dev": [], "test": data.splits["dev"]},
        data.modality_dims,
        source=data.source,
        sha256=data.sha256,
    )
    _WORKER.update(base=base, data=inner)


def _run(job: tuple[int, int]) -> dict:
    """One member: fold `fold` (1..K) of cross-validation over train, or a refit (fold 0) at `seed`."""
    import torch

    from joyful.run import build_coach

    fold, seed = job
    base, data = _WORKER["base"], _WORKER["data"]
    config = base.replace(cv_fold=fold, seed=seed, select_epoch="last")
    started = time.perf_counter()
    coach = build_coach(config, data, torch.device("cpu"), keep_best_state=False)
    summary = coach.fit(evaluate_test=True)
    return {
        "fold": fold,
        "seed": seed,
        "dev_weighted_f1": summary["test"]["weighted_f1"],
        "probabilities": coach.last_test.probabilities.tolist(),
        "labels": coach.last_test.labels.tolist(),
        "lengths": [len(d) for d in data.splits["test"]],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a best-config file (cross-validated)")
    parser.add_argument(
        "--data", required=True, nargs="+", help="data file(s), each with its own dev split"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="train every member this many epochs (default: the config's, the count its folds "
        "chose on its own data; other data may need another)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="write the figures here (JSON)")
    args = parser.parse_args(argv)
    from joyful.metrics import weighted_f1
    from tune.stats.bootstrap import RunSet, bootstrap_runs

    config = json.loads(Path(args.config).read_text())["config"]
    if args.epochs:
        config["epochs"] = args.epochs
    folds = int(config["cv_folds"])
    if not folds:
        raise SystemExit("scripts/refit_check.py: the config is not a cross-validated one")
    jobs = [(fold, config["seed"]) for fold in range(1, folds + 1)]
    jobs += [(0, config["seed"] + 100 + i) for i in range(folds)]
    context = multiprocessing.get_context("spawn")
    per_file = []
    for data in args.data:
        print(
            f"{folds} fold models and {folds} refits of {config['epochs']} epochs on {data} "
            "(train only; dev scored, test never read) ...",
            flush=True,
        )
        with context.Pool(args.workers, initializer=_start, initargs=(data, config)) as pool:
            runs = list(pool.imap(_run, jobs))
        for run in runs:
            kind = f"fold {run['fold']}" if run["fold"] else f"refit seed {run['seed']}"
            print(f"  {kind}: dev wF1 {run['dev_weighted_f1']:.4f} ({run['seconds']} s)")
        per_file.append(runs)

    def run_set(refits: bool) -> RunSet:
        """Every file's dev utterances one after another (dialogues numbered on), each member
        the k-th fold model or refit of every file."""
        labels, dialogues, members, offset = [], [], [], 0
        for runs in per_file:
            chosen = [r for r in runs if bool(r["fold"]) != refits]
            lengths = chosen[0]["lengths"]
            labels.append(np.array(chosen[0]["labels"]))
            dialogues.append(np.repeat(np.arange(len(lengths)), lengths) + offset)
            offset += len(lengths)
            members.append(np.stack([np.array(r["probabilities"]) for r in chosen]))
        return RunSet(np.concatenate(labels), np.concatenate(dialogues), np.concatenate(members, 1))

    folded, refit = run_set(False), run_set(True)
    labels = folded.labels
    scores = {
        name: weighted_f1(labels, s.predictions().predicted)
        for name, s in (("fold models", folded), ("refits", refit))
    }
    interval = bootstrap_runs(refit, folded, n_classes=int(labels.max()) + 1)
    print(
        f"dev wF1 of the ensembles over {int(labels.size)} dev utterances of {len(per_file)} "
        f"file(s): fold models {scores['fold models']:.4f}, refits {scores['refits']:.4f}; refits - "
        f"fold models {interval.words()} (dialogues and members resampled), p {interval.p_value:.3f}"
    )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "config": args.config,
                    "data": args.data,
                    "folds": folds,
                    "epochs": config["epochs"],
                    "members": [
                        [
                            {
                                k: v
                                for k, v in r.items()
                                if k not in ("probabilities", "labels", "lengths")
                            }
                            for r in runs
                        ]
                        for runs in per_file
                    ],
                    "dev_weighted_f1": scores,
                    "refit_minus_folds": {
                        "estimate": interval.estimate,
                        "ci95": [interval.low, interval.high],
                        "p_value": interval.p_value,
                    },
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
