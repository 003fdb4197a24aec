"""The human table of a benchmark run: one row per figure with how it was measured, then the targets."""

from __future__ import annotations

from typing import Any

GIB = 1024.0  # MiB


def _f(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def training_rows(training: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for fusion, r in training.items():
        vec, ref = r["vectorised"], r.get("reference")
        rows.append(
            (
                f"{fusion}: train epoch, vectorised",
                _f(vec["epoch_utterances_per_s"], 0, " utt/s"),
                f"whole epoch ({vec['epoch_batches']} batches, {vec['epoch_utterances']} utt), after a warm batch",
            )
        )
        if ref is None:
            rows.append((f"{fusion}: reference path", "failed", r.get("error", "")[:80]))
            continue
        rows += [
            (
                f"{fusion}: train, per-utterance reference",
                _f(ref["subset_utterances_per_s"], 1, " utt/s"),
                f"first {ref['subset_batches']} batch(es) only ({ref['subset_utterances']} utt, {ref['subset_seconds']:.0f} s)",
            ),
            (
                f"{fusion}: train speed-up (epoch)",
                _f(r["train_epoch_speedup"], 1, "x"),
                "vectorised epoch utt/s / reference subset utt/s",
            ),
            (
                f"{fusion}: train speed-up (same batch)",
                _f(r["train_same_batches_speedup"], 1, "x"),
                "both on the same first batch(es); vectorised cold",
            ),
        ]
        if r.get("eval_speedup") is not None:
            rows += [
                (
                    f"{fusion}: eval, vectorised",
                    _f(vec["eval_utterances_per_s"], 0, " utt/s"),
                    f"dev+test pass ({vec['eval_utterances']} utt), best of 2",
                ),
                (
                    f"{fusion}: eval, per-utterance reference",
                    _f(ref["eval_utterances_per_s"], 1, " utt/s"),
                    f"dev+test pass, once ({ref['eval_seconds']:.0f} s)",
                ),
                (
                    f"{fusion}: eval speed-up",
                    _f(r["eval_speedup"], 1, "x"),
                    "vectorised / reference utt/s",
                ),
            ]
        ceiling = r.get("eval_speedup_ceiling")
        if ceiling:
            rates = vec["matmul_flops_per_s"]
            rows.append(
                (
                    f"{fusion}: eval speed-up ceiling",
                    f"{ceiling['fp32']:.1f}x / {ceiling['bf16']:.1f}x",
                    f"fp32 / bf16: reference eval time / least time of the transformer's linear layers "
                    f"({vec['transformer_linear_flops'] / 1e9:.0f} GFLOP) at this process's matmul rate "
                    f"({rates['fp32'] / 1e9:.0f} / {rates['bf16'] / 1e9:.0f} GFLOP/s)",
                )
            )
        bf16 = r.get("bf16")
        if bf16:
            rows += [
                (
                    f"{fusion}: bf16 train epoch, vectorised",
                    _f(bf16["epoch_utterances_per_s"], 0, " utt/s"),
                    f"--precision bf16: {bf16['train_epoch_speedup_over_fp32']:.2f}x the fp32 epoch",
                ),
                (
                    f"{fusion}: bf16 train speed-up (epoch)",
                    _f(bf16["train_epoch_speedup"], 1, "x"),
                    "bf16 vectorised epoch utt/s / fp32 reference subset utt/s",
                ),
                (
                    f"{fusion}: bf16 eval speed-up",
                    _f(bf16["eval_speedup"], 1, "x"),
                    f"bf16 vectorised {bf16['eval_utterances_per_s']:,.0f} utt/s / fp32 reference",
                ),
                (
                    f"{fusion}: bf16 loss vs fp32",
                    f"{bf16['loss_rel_diff_vs_fp32']:.1e}",
                    "rel. diff of the full dev-batch loss (no dropout), bf16 rounding",
                ),
            ]
        rows.append(
            (
                f"{fusion}: fusion alone speed-up",
                _f(r["fusion_speedup"], 1, "x"),
                f"fusion forward + backward on the dev batch ({vec['fusion_utterances']} utt): "
                f"{vec['fusion_utterances_per_s']:,.0f} vs {ref['fusion_utterances_per_s']:,.1f} utt/s",
            )
        )
        rows += [
            (
                f"{fusion}: peak RSS, vectorised",
                _f(vec["peak_rss_mib"] / GIB, 2, " GiB"),
                f"ru_maxrss of its own process (data {vec['data_rss_mib'] / GIB:.2f} GiB incl.)",
            ),
            (
                f"{fusion}: peak RSS, reference",
                _f(ref["peak_rss_mib"] / GIB, 2, " GiB"),
                "ru_maxrss, autograd keeps a P x P softmax per utterance",
            ),
            (
                f"{fusion}: same results",
                "yes" if r["same_results"] else "NO",
                f"rel. diff: full loss (no dropout) {r['train_loss_rel_diff']:.1e}, dev/test loss "
                f"{r['eval_loss_rel_diff']:.1e} (tol 1e-4)",
            ),
        ]
    return rows


def startup_rows(startup: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, cases in startup["commands"].items():
        rows.append(
            (
                f"{name} start-up",
                f"{max(cases.values()):.2f} s",
                f"--help {cases['help']:.2f} s, --version {cases['version']:.2f} s, argument error "
                f"{cases['argument_error']:.2f} s (best of {startup['repeats']}, a fresh interpreter each)",
            )
        )
    return rows


def precision_rows(precision: dict[str, Any]) -> list[tuple[str, str, str]]:
    rates = precision["linear_flops_per_s"]
    return [
        (
            "bf16 / fp32 (linear layer)",
            f"{precision['bf16_over_fp32']:.2f}x",
            f"Linear(1024, 1024) on 2048 rows, {precision['device']}, {precision['threads']} thread(s): "
            f"bf16 autocast {rates['bf16'] / 1e9:.0f} GFLOP/s, fp32 {rates['fp32'] / 1e9:.0f} GFLOP/s",
        ),
        ("--precision auto picks", precision["auto"], precision["auto_reason"]),
    ]


def memory_rows(memory: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for name, r in memory["runs"].items():
        resident = r["resident_mb"]
        rows.append(
            (
                f"{name}: last epoch / epoch 2",
                _f(r["last_over_epoch2"], 2, "x"),
                f"resident {resident[1] / GIB:.2f} -> {resident[-1] / GIB:.2f} GiB over {len(resident)} epochs "
                f"(peak {r['peak_rss_mb'] / GIB:.2f} GiB, {r['precision']}, {r['epoch_seconds']:.1f} s/epoch, "
                f"kernel caches {r['kernel_cache']['ONEDNN_PRIMITIVE_CACHE_CAPACITY']})",
            )
        )
    reused = memory.get("reused_actor")
    if reused:
        ends = ", ".join(f"{trial[-1] / GIB:.2f}" for trial in reused["resident_mb"])
        rows.append(
            (
                "reused actor: last trial / first trial's epoch 2",
                _f(reused["last_over_first_epoch2"], 2, "x"),
                f"{reused['trials']} trials x {reused['epochs']} epochs on {reused['workers']} worker(s); "
                f"resident at each trial's end {ends} GiB; peak {(reused['peak_trial_rss_mb'] or 0) / GIB:.2f} GiB",
            )
        )
    return rows


def overtuning_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    if "at_least_untuned" not in result:  # a result from before the reference runs: not comparable
        return [("overtuning", "n/a", "recorded before the reference runs existed; run it again")]

    def score(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    arms = result.get("arms", ["holdout", "cv"])
    for row in result["draws"]:
        for arm in arms:
            r = row[arm]
            compared = r["published_vs_untuned_test"]
            interval = (
                f"; published model - untuned on test {compared['estimate']:+.4f} "
                f"[{compared['ci95'][0]:+.4f}, {compared['ci95'][1]:+.4f}]"
                if compared
                else ""
            )
            rows.append(
                (
                    f"draw {row['draw']}, {arm}: published test / strong untuned / defaults",
                    f"{r['published_test']:.4f} / {score(r['untuned_test'])} / "
                    f"{score(r['defaults_test'])}",
                    f"published {r['published']!r} (dev {r['published_dev']:.4f}), its model "
                    f"{score(r['ensemble_test'])}{interval}; {r['seconds'] / 60:.1f} min",
                )
            )
    n = len(result["draws"])
    for arm in arms:
        mean = {
            k: score(result[f"mean_{k}_test"][arm]) for k in ("published", "untuned", "defaults")
        }
        rows.append(
            (
                f"{arm}: published >= strong untuned on test",
                f"{result['at_least_untuned'][arm]}/{n}",
                f"mean test: published {mean['published']}, strong untuned {mean['untuned']}, "
                f"defaults {mean['defaults']} (>= defaults on {result['at_least_defaults'][arm]}/{n}); "
                f"{result['seconds'][arm] / 60:.0f} min in all",
            )
        )
    return rows


def search_rows(search: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    standalone = search["standalone_trial"]
    rows.append(
        (
            "trial outside Ray",
            _f(standalone["build_seconds"] + standalone["fit_seconds"], 1, " s"),
            f"{standalone['epochs']} epochs: data load, build, fit (epoch {standalone['epoch_seconds']:.1f} s); "
            f"{standalone['process_seconds']:.0f} s with interpreter start and imports",
        )
    )
    for concurrency, r in search["runs"].items():
        rows += [
            (
                f"{concurrency} concurrent: trials/hour",
                _f(r["trials_per_hour"], 0),
                f"{r['trials']} trials x {search['epochs_per_trial']} epochs in {r['wall_seconds']:.0f} s (Tuner.fit)",
            ),
            (
                f"{concurrency} concurrent: wall split",
                f"{100 * r['training_share']:.0f}% train",
                f"{100 * r['dev_eval_share_estimated']:.0f}% dev eval (est.), {100 * r['overhead_share']:.0f}% "
                f"Ray/Optuna overhead ({r['overhead_seconds_per_trial']:.1f} s/trial) of {concurrency} x wall",
            ),
        ]
    if "ray_seconds_per_trial_over_standalone" in search["runs"].get("1", {}):
        rows.append(
            (
                "Ray cost per small trial",
                _f(search["runs"]["1"]["ray_seconds_per_trial_over_standalone"], 1, " s"),
                "1 concurrent: wall/trial - that trial's own work outside Ray",
            )
        )
    iemocap = search.get("iemocap_trial")
    if iemocap:
        rows += [
            (
                "IEMOCAP-size trial overhead",
                f"{100 * iemocap['overhead_share_measured']:.1f}%",
                f"measured: {iemocap['epochs']}-epoch Ray trial {iemocap['ray_wall_seconds']:.0f} s vs its work "
                f"outside Ray {iemocap['standalone']['build_seconds'] + iemocap['standalone']['fit_seconds']:.0f} s",
            ),
            (
                f"  at {iemocap['extrapolated_epochs']} epochs",
                f"{100 * iemocap['overhead_share_extrapolated']:.1f}%",
                f"extrapolated: {iemocap['overhead_fixed_seconds']:.0f} s per trial + "
                f"{iemocap['overhead_per_checkpoint_seconds']:.1f} s per checkpoint "
                f"({iemocap['standalone']['checkpoint_mib']:.0f} MiB) every {iemocap['checkpoint_every']} epochs",
            ),
            (
                "IEMOCAP-size trial peak RSS",
                _f((iemocap["peak_trial_rss_mib"] or 0) / GIB, 2, " GiB"),
                "Ray trial process, sampled every 0.25 s",
            ),
        ]
    elif "iemocap_extrapolated" in search:
        e = search["iemocap_extrapolated"]
        rows.append(
            (
                "IEMOCAP-size trial overhead",
                f"{100 * e['overhead_share']:.1f}%",
                f"extrapolated: {e['overhead_fixed_seconds']:.0f} s/trial (small data) + "
                f"{e['overhead_per_checkpoint_seconds']:.1f} s per checkpoint every {e['checkpoint_every']} "
                f"epochs vs {e['epochs']} x "
                f"{e['epoch_seconds']:.0f} s epochs",
            )
        )
    return rows


def searcher_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Per budget, each arm's regret, its ratio to the best random search at equal compute, and its model share."""
    rows = []
    for budget in summary["budgets"].values():
        for key, row in sorted(budget["arms"].items(), key=lambda kv: kv[1]["regret"]["mean"]):
            versus = row.get("vs_random")
            ratio = (
                f"{versus['ratio']:.2f}x random"
                if versus and versus["ratio"] is not None
                else "random"
            )
            rows.append(
                (
                    f"{budget['trials']} trials, {key}",
                    f"{row['regret']['mean']:.4f}",
                    f"regret CI95 [{row['regret']['ci95'][0]:.4f}, {row['regret']['ci95'][1]:.4f}]; {ratio} at "
                    f"{row['fold_epochs']:.0f} fold-epochs; model {row['model_share']:.0%}; fusion verdict "
                    f"right {row['fusion_agrees']:.0%}",
                )
            )
    return rows


def profile_rows(profile: dict[str, Any]) -> list[tuple[str, str, str]]:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in profile["forward_stage_seconds"].items())
    pool = profile["self_pool_seconds"]
    rows = [
        (
            "profiled epoch",
            _f(profile["epoch_seconds_profiled"], 1, " s"),
            f"{profile['utterances']} utt, {profile['fusion']}, torch.profiler on",
        ),
        (
            "  forward",
            _f(sum(profile["forward_stage_seconds"].values()), 1, " s"),
            f"by stage (s): {stages}",
        ),
        ("  backward", _f(profile["backward_seconds"], 1, " s"), "all autograd nodes"),
        (
            "  self-pooling",
            f"{pool['forward']:.1f} + {pool['backward']:.1f} s",
            "forward + backward",
        ),
    ]
    for op in profile["top_ops"][:8]:
        rows.append(
            (
                f"  {op['name'][:34]}",
                f"{100 * op['share']:.1f}%",
                f"self {op['self_seconds']:.1f} s, {op['calls']} calls",
            )
        )
    return rows


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = _targets(results)
    startup = results.get("startup")
    if startup:
        found.append(
            {
                "target": "every command answers --help/--version/argument errors < 1 s",
                "value": startup["slowest_seconds"],
                "met": startup["slowest_seconds"] < 1.0,
            }
        )
    overtuning = results.get("overtuning")
    if overtuning:
        n = len(overtuning["draws"])
        arms = overtuning.get("arms", ["holdout", "cv"])
        if "at_least_untuned" in overtuning and "cv" in arms:
            found.append(
                {
                    "target": "cv: published >= strong untuned setting on test, draws",
                    "value": overtuning["at_least_untuned"]["cv"],
                    "met": overtuning["at_least_untuned"]["cv"] >= max(1, round(0.8 * n)),
                }
            )
        if {"cv", "holdout"} <= set(arms):
            found.append(
                {
                    "target": "cv mean test - holdout mean test",
                    "value": overtuning["mean_published_test"]["cv"]
                    - overtuning["mean_published_test"]["holdout"],
                    "met": overtuning["mean_published_test"]["cv"]
                    > overtuning["mean_published_test"]["holdout"],
                }
            )
    memory = results.get("memory")
    if memory:
        for name, r in memory["runs"].items():
            if r["last_over_epoch2"] is not None and "default kernel caches" not in name:
                found.append(
                    {
                        "target": f"{name}: resident at the last epoch <= 1.10x epoch 2",
                        "value": r["last_over_epoch2"],
                        "met": r["last_over_epoch2"] <= 1.10,
                    }
                )
        reused = memory.get("reused_actor")
        if reused:
            found.append(
                {
                    "target": "reused actor: last trial's end <= 1.10x the first trial's epoch 2",
                    "value": reused["last_over_first_epoch2"],
                    "met": reused["last_over_first_epoch2"] <= 1.10,
                }
            )
    return found


def _targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure reached and whether it is met (None when not measured)."""
    found = []
    for fusion, r in results.get("training", {}).items():
        if r.get("reference") is not None:
            found.append(
                {
                    "target": f"{fusion}: train epoch >= 5x reference",
                    "value": r["train_epoch_speedup"],
                    "met": r["train_epoch_speedup"] >= 5,
                }
            )
            if r.get("eval_speedup") is not None:
                found.append(
                    {
                        "target": f"{fusion}: evaluation >= 10x reference",
                        "value": r["eval_speedup"],
                        "met": r["eval_speedup"] >= 10,
                    }
                )
            if r.get("bf16"):
                b = r["bf16"]
                found.append(
                    {
                        "target": f"{fusion}: train epoch >= 5x reference, --precision bf16",
                        "value": b["train_epoch_speedup"],
                        "met": b["train_epoch_speedup"] >= 5,
                    }
                )
                if b.get("eval_speedup") is not None:
                    found.append(
                        {
                            "target": f"{fusion}: evaluation >= 10x reference, --precision bf16",
                            "value": b["eval_speedup"],
                            "met": b["eval_speedup"] >= 10,
                        }
                    )
    search = results.get("search_throughput")
    if search:
        iemocap = search.get("iemocap_trial")
        share = (
            iemocap["overhead_share_extrapolated"]
            if iemocap
            else search.get("iemocap_extrapolated", {}).get("overhead_share")
        )
        if share is not None:
            found.append(
                {
                    "target": "Ray/Optuna overhead <= 10% of an IEMOCAP-size trial (extrapolated)",
                    "value": share,
                    "met": share <= 0.10,
                }
            )
    rss = None
    if search and search.get("iemocap_trial") and search["iemocap_trial"]["peak_trial_rss_mib"]:
        rss = search["iemocap_trial"]["peak_trial_rss_mib"]
    elif results.get("training"):
        rss = max(r["vectorised"]["peak_rss_mib"] for r in results["training"].values())
    if rss is not None:
        found.append(
            {
                "target": "peak RSS of one CPU trial <= 4 GiB",
                "value": rss / GIB,
                "met": rss <= 4 * GIB,
            }
        )
    searchers = results.get("searchers")
    if searchers:
        default = searchers["default_arm"]
        row = searchers["budgets"]["1"]["arms"][default]
        versus = row.get("vs_random")
        if versus and versus["ratio"] is not None:
            found.append(
                {
                    "target": f"{default}: regret <= half the best random search's at equal compute",
                    "value": versus["ratio"],
                    "met": versus["ratio"] <= 0.5,
                }
            )
            found.append(
                {
                    "target": f"{default}: the CI95 of that difference excludes 0",
                    "value": versus["difference"]["ci95"][1],
                    "met": versus["difference"]["excludes_zero"],
                }
            )
        for budget in searchers["budgets"].values():
            share = budget["arms"][default]["least_model_share"]
            found.append(
                {
                    "target": f"{default}, {budget['trials']} trials: >= half model-proposed (every seed)",
                    "value": share,
                    "met": share >= 0.5,
                }
            )
    return found


def render(results: dict[str, Any]) -> str:
    sections = [
        ("Start-up of the commands", "startup", startup_rows),
        ("Precision", "precision", precision_rows),
        ("Resident memory", "memory", memory_rows),
        ("Training throughput", "training", training_rows),
        ("Search throughput (small synthetic data)", "search_throughput", search_rows),
        ("Searchers replayed on real learning curves", "searchers", searcher_rows),
        ("Profile of one training epoch", "profile", profile_rows),
        (
            "Overtuning (draws of MELD: holdout against cross-validation)",
            "overtuning",
            overtuning_rows,
        ),
    ]
    lines = []
    meta = results["meta"]
    lines.append(
        f"joyful-tune benchmarks ({'quick' if meta['quick'] else 'full'}): {meta['machine']}; "
        f"load average {meta['load_start']} at start, {meta.get('load_end')} at end"
    )
    for title, key, rows_of in sections:
        if key not in results:
            continue
        rows = rows_of(results[key])
        width = max(len(r[0]) for r in rows)
        value_width = max(len(r[1]) for r in rows)
        lines += ["", f"== {title}"]
        lines += [f"{name:<{width}}  {value:>{value_width}}  {how}" for name, value, how in rows]
    found = results.get("targets", [])
    if found:
        lines += ["", "== Targets"]
        width = max(len(t["target"]) for t in found)
        for t in found:
            lines.append(
                f"{t['target']:<{width}}  {t['value']:>8.2f}  {'met' if t['met'] else 'NOT met'}"
            )
    return "\n".join(lines)
