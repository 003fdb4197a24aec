"""`tune/report.py` / `joyful-report`: a readable report of a search, rebuilt from stored results.

    python tune/report.py --dataset meld_text            # results/reports/meld_text.md + PNGs
    python tune/report.py --dataset meld_text --html   # also reports/meld_text.html (interactive)
    python tune/report.py                             # every data set with a study in studies/

A search and a confirmation write it themselves at their end; this command rebuilds it. It reads the
study record (`StudyRecord`), the search's Optuna study from its journal (states, values,
distributions: importance, parallel coordinates, slices, contours) and, when present, the best
config (confirmation, references, expected effects). Writes results/reports/<dataset>.md and PNG
plots in results/reports/<dataset>/, atomically. Nothing is retrained and no server is needed: the
Markdown links the PNGs by relative path. Plots of dev wF1 draw the level of always predicting the
training split's majority class.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.cli_parser import Parser
from joyful.errors import UserError
from joyful.io import REPO
from tune.records.store import ResultStore
from tune.reporting.report import build_report

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="tune/report.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dataset",
        action="append",
        help="data set to report (repeatable; default: every stored study)",
    )
    p.add_argument(
        "--results-dir", default=str(REPO / "results"), help="results folder of the searches"
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also write <dataset>.html: Optuna's interactive plotly figures, self-contained "
        "(needs plotly)",
    )
    args = p.parse_args(argv)

    results_dir = Path(args.results_dir)
    store = ResultStore(results_dir)
    try:
        datasets = args.dataset or store.datasets_with_studies()
        if not datasets:
            raise UserError(f"no studies in {store.studies_dir()}; run tune/search.py first")
        for dataset in datasets:
            print(f"wrote {build_report(dataset, results_dir, html=args.html)}")
    except UserError as exc:
        print(f"tune/report.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
