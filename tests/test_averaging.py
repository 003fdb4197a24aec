"""Averaged weights (joyful/averaging.py) and the precision `auto` picks (joyful/runtime.py)."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import tiny_config, without_timing
from torch import nn

from joyful import runtime
from joyful.averaging import WeightAverage
from joyful.errors import UserError
from joyful.run import build_coach

CPU = torch.device("cpu")


class Tiny(nn.Module):
    """One weight, one floating buffer, one integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def set_state(model: Tiny, value: float, count: int) -> None:
    with torch.no_grad():
        model.weight.fill_(value)
        model.running.fill_(10 * value)
        model.count.fill_(count)


def test_ema_is_the_bias_corrected_weighted_mean_of_every_step() -> None:
    model, decay = Tiny(), 0.9
    average = WeightAverage(model, "ema", ema_decay=decay)
    values = [1.0, 2.0, 4.0, -3.0, 0.5]
    for step, value in enumerate(values, start=1):
        set_state(model, value, step)
        average.after_step(model)
    n = len(values)
    weights = [(1 - decay) * decay ** (n - k) for k in range(1, n + 1)]
    expected = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
    torch.testing.assert_close(average.model.weight, torch.full((2,), expected))
    torch.testing.assert_close(
        average.model.running, torch.full((2,), 10 * expected)
    )  # buffers averaged too
    assert int(average.model.count) == n  # integer buffers are copied, not averaged
    assert not average.model.weight.requires_grad
    average.after_epoch(model, 1)  # an EMA does nothing at the end of an epoch
    torch.testing.assert_close(average.model.weight, torch.full((2,), expected))


def test_the_first_ema_step_copies_the_weights() -> None:
    model = Tiny()
    average = WeightAverage(model, "ema", ema_decay=0.999)
    set_state(model, 7.0, 1)
    average.after_step(model)
    torch.testing.assert_close(average.model.weight, torch.full((2,), 7.0))


def test_swa_is_the_mean_of_epoch_end_weights_from_its_start() -> None:
    model = Tiny()
    average = WeightAverage(model, "swa", swa_start=3)
    for epoch, value in enumerate([5.0, 9.0, 1.0, 2.0, 6.0], start=1):
        set_state(model, value, epoch)
        average.after_step(model)  # no effect: SWA averages epoch ends
        average.after_epoch(model, epoch)
        if epoch == 2:  # before the start it follows the trained weights
            torch.testing.assert_close(average.model.weight, torch.full((2,), 9.0))
    torch.testing.assert_close(average.model.weight, torch.full((2,), (1.0 + 2.0 + 6.0) / 3))
    assert average.updates == 3


def test_state_dict_round_trip_and_mode_check() -> None:
    model = Tiny()
    average = WeightAverage(model, "ema", ema_decay=0.5)
    set_state(model, 3.0, 1)
    average.after_step(model)
    copy = WeightAverage(Tiny(), "ema", ema_decay=0.5)
    copy.load_state_dict(average.state_dict())
    torch.testing.assert_close(copy.model.weight, average.model.weight)
    assert copy.updates == 1
    with pytest.raises(ValueError, match="averages weights by 'ema'"):
        WeightAverage(Tiny(), "swa").load_state_dict(average.state_dict())


@pytest.mark.parametrize(
    ("mode", "decay", "start", "message"),
    [
        ("mean", 0.9, 1, "must be one of"),
        ("ema", 1.0, 1, "ema_decay"),
        ("swa", 0.9, 0, "swa_start"),
    ],
)
def test_bad_arguments_name_the_rule(mode, decay, start, message) -> None:
    with pytest.raises(ValueError, match=message):
        WeightAverage(Tiny(), mode, ema_decay=decay, swa_start=start)


@pytest.mark.parametrize("mode", ["ema", "swa"])
def test_coach_selects_and_reports_the_averaged_model(
    synthetic_path, synthetic_data, mode: str
) -> None:
    config = tiny_config(synthetic_path, epochs=3, weight_averaging=mode, ema_epochs=0.5)
    coach = build_coach(config, synthetic_data, CPU)
    summary = coach.fit(evaluate_test=False)
    last = summary["history"][-1]
    assert (
        last["dev_loss"] != last["raw_dev_loss"]
    )  # two models are scored: the average and the raw weights
    assert summary["best_dev_weighted_f1"] == max(r["dev_weighted_f1"] for r in summary["history"])
    raw = {k: v for k, v in coach.model.state_dict().items()}
    averaged = coach.selected_model.state_dict()
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw if raw[k].is_floating_point())
    # Averaging never changes the training trajectory: the raw weights score as without it.
    plain = build_coach(config.replace(weight_averaging="none"), synthetic_data, CPU).fit(
        evaluate_test=False
    )
    assert [r["dev_weighted_f1"] for r in plain["history"]] == [
        r["raw_dev_weighted_f1"] for r in summary["history"]
    ]
    assert without_timing(
        [{k: r[k] for k in ("train_loss", "lr")} for r in plain["history"]]
    ) == without_timing([{k: r[k] for k in ("train_loss", "lr")} for r in summary["history"]])


def test_the_ema_window_is_counted_in_epochs(synthetic_path, synthetic_data) -> None:
    """The per-step decay follows the batch size, so the window stays `ema_epochs` epochs long."""
    decays = {}
    for batch_size in (2, 4):
        coach = build_coach(
            tiny_config(synthetic_path, batch_size=batch_size, ema_epochs=2.0), synthetic_data, CPU
        )
        steps = len(coach.loaders["train"])
        decays[batch_size] = coach.average.ema_decay
        assert coach.average.ema_decay == pytest.approx(1 - 1 / (2.0 * steps))
    assert decays[2] > decays[4]  # more, smaller steps per epoch: each step counts less


def test_an_ema_window_of_one_step_or_less_is_refused_with_the_flags_to_change(
    synthetic_path, synthetic_data
) -> None:
    config = tiny_config(synthetic_path, batch_size=1000, ema_epochs=1.0)  # one step per epoch
    with pytest.raises(
        UserError, match=r"--ema_epochs 1 x 1 optimizer step\(s\) per epoch is a window of 1 step"
    ):
        build_coach(config, synthetic_data, CPU)
    # The same window is fine without EMA.
    build_coach(config.replace(weight_averaging="swa"), synthetic_data, CPU)


def test_the_train_cli_refuses_a_too_short_ema_window_in_one_line(synthetic_path, tmp_path) -> None:
    import subprocess
    import sys

    from conftest import REPO

    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--dataset",
            "synthetic",
            "--data",
            str(synthetic_path),
            "--batch_size",
            "1000",
            "--ema_epochs",
            "0.5",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--ema_epochs 0.5" in done.stderr, done.stderr


def test_swa_recomputes_the_batch_norm_statistics_of_the_averaged_weights(
    synthetic_path, synthetic_data
) -> None:
    """As torch.optim.swa_utils.update_bn: after each SWA epoch, the averaged model's BatchNorm statistics are
    the mean of the per-batch statistics of one pass over train (in stored order, no dropout) - not an
    average of the trained model's statistics."""
    config = tiny_config(
        synthetic_path, epochs=2, weight_averaging="swa", swa_start=1, batch_size=3
    )
    coach = build_coach(config, synthetic_data, CPU)
    coach.fit(evaluate_test=False)
    averaged = coach.selected_model
    norm = next(m for m in averaged.modules() if isinstance(m, nn.BatchNorm1d))
    probe = copy.deepcopy(averaged).eval()
    inputs = []  # what reaches BatchNorm in each batch of the pass
    probe_norm = next(m for m in probe.modules() if isinstance(m, nn.BatchNorm1d))
    probe_norm.register_forward_hook(lambda module, args, output: inputs.append(args[0].detach()))
    with torch.no_grad():
        for batch in coach.loaders["train"].in_order():
            probe(batch, contrast=False, reconstruct=False)
    means = torch.stack([x.mean(0) for x in inputs]).mean(0)
    variances = torch.stack([x.var(0, unbiased=True) for x in inputs]).mean(0)
    torch.testing.assert_close(norm.running_mean, means, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_var, variances, rtol=1e-4, atol=1e-5)
    trained = next(m for m in coach.model.modules() if isinstance(m, nn.BatchNorm1d))
    assert not torch.allclose(
        trained.running_mean, norm.running_mean
    )  # not the trained weights' statistics
    # The pass draws no random number: training runs as it would without averaging.
    plain = build_coach(config.replace(weight_averaging="none"), synthetic_data, CPU).fit(
        evaluate_test=False
    )
    assert [r["dev_weighted_f1"] for r in plain["history"]] == [
        r["raw_dev_weighted_f1"] for r in coach.history
    ]


def test_resume_refuses_a_checkpoint_of_another_averaging(synthetic_path, synthetic_data) -> None:
    plain = build_coach(
        tiny_config(synthetic_path, epochs=1, weight_averaging="none"), synthetic_data, CPU
    )
    plain.fit(evaluate_test=False)
    averaged = build_coach(
        tiny_config(synthetic_path, epochs=1, weight_averaging="ema"), synthetic_data, CPU
    )
    with pytest.raises(UserError, match="another --weight_averaging"):
        averaged.load_state_dict(plain.state_dict())


# --- precision -------------------------------------------------------------------------------


def test_auto_picks_fp32_on_a_cpu_without_native_bf16(
    monkeypatch, synthetic_path, synthetic_data
) -> None:
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    assert runtime.resolve_precision("auto", CPU) == (
        "fp32",
        "auto: CPU without AVX-512-BF16 or AMX (bf16 would be emulated)",
    )
    coach = build_coach(
        tiny_config(synthetic_path, precision="auto", epochs=1), synthetic_data, CPU
    )
    assert coach.precision == "fp32" and not coach.autocast()._enabled
    summary = coach.fit(evaluate_test=False)
    assert summary["precision"]["used"] == "fp32" and summary["precision"]["requested"] == "auto"


def test_auto_picks_bf16_where_the_cpu_computes_it(
    monkeypatch, synthetic_path, synthetic_data
) -> None:
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: ["AVX-512-BF16"])
    assert runtime.resolve_precision("auto", CPU) == ("bf16", "auto: CPU with AVX-512-BF16")
    coach = build_coach(
        tiny_config(synthetic_path, precision="auto", epochs=1), synthetic_data, CPU
    )
    assert coach.precision == "bf16" and coach.autocast()._enabled


def test_an_explicit_precision_is_kept(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    assert runtime.resolve_precision("bf16", CPU) == ("bf16", "--precision bf16")
    assert runtime.resolve_precision("fp32", CPU)[0] == "fp32"


def test_the_probe_reads_torchs_cpu_detection() -> None:
    features = runtime.cpu_bf16_features()
    assert set(features) <= {"AVX-512-BF16", "AMX"}
    assert bool(features) == (
        torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    )
