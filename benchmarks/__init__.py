"""Performance benchmarks of joyful-tune (`python -m benchmarks`; figures in docs/PERFORMANCE.md).

training.py           vectorised fusion vs the per-utterance reference: utt/s, peak RSS, same results
search_throughput.py  trials per hour and the wall-time split at 1, 2 and 4 concurrent trials
search_efficiency.py  TPE + ASHA against random search with full-length trials
profile_epoch.py      torch.profiler of one training epoch
searches.py           runs real searches through build_tuner (tune/runner/tuner.py)
common.py, worker.py  synthetic data files and one fresh subprocess per measurement
report.py             the printed table and the targets
gpu_check.sh          the checks still to run on a CUDA machine
"""
