#!/usr/bin/env bash
# The main job, from a fresh checkout: set up, make the built-in synthetic data set, run a real
# Ray Tune + Optuna search on it (10 trials, one Optuna sampler per fusion; it confirms its winner
# against the references and writes its report), score the published ensemble with joyful.predict,
# then re-run the winner through the training CLI from its best-config JSON.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
PY=.venv/bin/python
DATA=data/synthetic/data_synthetic.pkl
$PY -m joyful.data.synthetic --out "$DATA" --scale 0.35
$PY tune/search.py --dataset synthetic --data "$DATA" --storage-path ray_results \
    --name "quickstart-$(date -u +%Y%m%d-%H%M%S)" --confirm-top 1 --quiet
echo
echo "== the published ensemble on the test split: python -m joyful.predict --config results/best_configs/synthetic.json"
$PY -m joyful.predict --config results/best_configs/synthetic.json --data "$DATA" --out results/predictions_synthetic.csv
echo
echo "== re-running the winner: python train.py --config results/best_configs/synthetic.json"
$PY train.py --config results/best_configs/synthetic.json
echo
echo "== the search's report: results/reports/synthetic.md (figures in results/reports/synthetic/)"
# The report's summary (its lines up to the first blank one, ending with what is published), then its verdicts.
sed -n '3,/^$/p' results/reports/synthetic.md
grep -E '^\*\*(Confirmed winner|published ensemble|Published)' results/reports/synthetic.md || true
