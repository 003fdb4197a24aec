"""The Coach: reproducible, resumable, dev-only selection, one-pass evaluation, loud on NaN."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from conftest import tiny_config, without_timing
from torch.nn import functional as F

from joyful.checkpoint import load_checkpoint, save_checkpoint
from joyful.coach import Coach, NonFiniteLossError
from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.run import build_coach

CPU = torch.device("cpu")


def run(config: JoyfulConfig, data: DialogueData, **kwargs) -> tuple[Coach, dict]:
    coach = build_coach(config, data, CPU, **kwargs)
    return coach, coach.fit(evaluate_test=True)


class CountingLoader:
    """Wraps a real loader and counts how often it is iterated."""

    def __init__(self, loader) -> None:
        self.loader, self.iterations = loader, 0

    def __iter__(self):
        self.iterations += 1
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def num_utterances(self) -> int:
        return self.loader.num_utterances


@pytest.mark.parametrize("fusion", ["autofusion", "hierarchical"])
def test_same_seed_same_data_same_metrics(synthetic_path, synthetic_data, fusion: str) -> None:
    config = tiny_config(synthetic_path, fusion=fusion, epochs=3)
    _, first = run(config, synthetic_data)
    _, second = run(config, synthetic_data)
    assert len(first["history"]) == 3
    assert without_timing(first["history"]) == without_timing(second["history"])
    assert first["test"] == second["test"]
    _, other_seed = run(config.replace(seed=25), synthetic_data)
    assert without_timing(other_seed["history"]) != without_timing(first["history"])


def test_history_records_and_summary(synthetic_path, synthetic_data) -> None:
    coach, summary = run(tiny_config(synthetic_path, epochs=3), synthetic_data)
    record = summary["history"][0]
    assert set(record["train_loss"]) == {
        "nll",
        "contrastive",
        "reconstruction",
        "gate_reg",
        "total",
    }
    assert all(math.isfinite(v) for v in record["train_loss"].values())
    assert record["train_loss"]["contrastive"] > 0 and record["train_loss"]["reconstruction"] > 0
    for key in (
        "dev_loss",
        "dev_weighted_f1",
        "dev_accuracy",
        "lr",
        "improved",
        "train_seconds",
        "train_utterances_per_s",
        "raw_dev_weighted_f1",
        "raw_dev_loss",
        "resident_mb",
    ):
        assert key in record
    assert 10 < record["resident_mb"] < 1e6  # the process's resident size, MiB
    # Selection on dev wF1 only: the first epoch with the strictly greatest value.
    scores = [r["dev_weighted_f1"] for r in summary["history"]]
    assert summary["best_epoch"] == int(np.argmax(scores)) + 1
    assert summary["best_dev_weighted_f1"] == max(scores)
    assert (
        summary["best_dev_accuracy"]
        == summary["history"][summary["best_epoch"] - 1]["dev_accuracy"]
    )
    # With weight averaging (the default) the raw weights are tested too, at their own best dev epoch.
    assert set(summary["test"]) == {"weighted_f1", "accuracy", "loss", "report", "raw"}
    raw_scores = [r["raw_dev_weighted_f1"] for r in summary["history"]]
    assert summary["test"]["raw"]["best_epoch"] == int(np.argmax(raw_scores)) + 1
    assert summary["weight_averaging"] == "ema"
    assert summary["precision"] == {
        "requested": "fp32",
        "used": "fp32",
        "reason": "--precision fp32",
    }
    assert set(summary["test"]["report"]) >= {
        "hap",
        "sad",
        "neu",
        "ang",
        "accuracy",
        "weighted avg",
    }
    assert summary["epochs_run"] == 3 and summary["wall_seconds"] > 0


@pytest.mark.parametrize(("averaging", "dev_passes"), [("none", 1), ("ema", 2)])
def test_test_set_untouched_without_evaluate_test(
    synthetic_path, synthetic_data, averaging, dev_passes
) -> None:
    coach = build_coach(
        tiny_config(synthetic_path, weight_averaging=averaging), synthetic_data, CPU
    )
    coach.loaders["test"] = CountingLoader(coach.loaders["test"])
    coach.loaders["dev"] = CountingLoader(coach.loaders["dev"])
    summary = coach.fit(evaluate_test=False)
    assert "test" not in summary
    assert coach.loaders["test"].iterations == 0
    # Once per epoch per model scored on dev: the selected one, and with averaging the raw weights too.
    assert coach.loaders["dev"].iterations == 2 * dev_passes


@pytest.mark.parametrize("averaging", ["none", "ema", "swa"])
def test_test_set_evaluated_once_with_the_best_dev_state(
    synthetic_path, synthetic_data, averaging: str
) -> None:
    config = tiny_config(synthetic_path, epochs=4, learning_rate=3e-3, weight_averaging=averaging)
    coach = build_coach(config, synthetic_data, CPU)
    coach.loaders["test"] = CountingLoader(coach.loaders["test"])
    summary = coach.fit(evaluate_test=True)
    # Once per model: the selected one, and with averaging the raw weights at their own best epoch.
    assert coach.loaders["test"].iterations == (1 if averaging == "none" else 2)
    assert (coach.selected_model is coach.model) == (averaging == "none")
    for name, value in coach.selected_model.state_dict().items():
        torch.testing.assert_close(value, coach.best_state[name], msg=name)
    assert summary["test"]["weighted_f1"] == coach.evaluate("test").weighted_f1
    # The selected model's best dev score is the one its restored state gives again.
    assert coach.evaluate("dev").weighted_f1 == summary["best_dev_weighted_f1"]


def test_dev_evaluation_is_one_forward_pass_per_batch(synthetic_path, synthetic_data) -> None:
    coach = build_coach(tiny_config(synthetic_path, batch_size=1), synthetic_data, CPU)
    calls = []
    real_forward = coach.model.forward

    def counting_forward(batch, contrast, reconstruct=True):
        calls.append((contrast, reconstruct))
        return real_forward(batch, contrast, reconstruct)

    coach.model.forward = counting_forward
    result = coach.evaluate("dev", coach.model)
    del coach.model.forward
    # No contrastive views and no fusion decoders: evaluation reports neither loss.
    assert calls == [(False, False)] * len(coach.loaders["dev"]) and len(calls) == 2
    # The loss is the mean NLL per utterance over the whole split, from the same outputs.
    with torch.no_grad():
        outputs = [
            (coach.model(b, contrast=False).log_probs, b.labels) for b in coach.loaders["dev"]
        ]
    log_probs = torch.cat([o[0] for o in outputs])
    labels = torch.cat([o[1] for o in outputs])
    assert result.loss == pytest.approx(float(F.nll_loss(log_probs, labels)), rel=1e-5)
    np.testing.assert_array_equal(result.predictions, log_probs.argmax(1).numpy())
    assert result.accuracy == pytest.approx(float((log_probs.argmax(1) == labels).float().mean()))


@pytest.mark.parametrize("averaging", ["none", "ema", "swa"])
def test_resume_from_checkpoint_equals_uninterrupted_run(
    tmp_path, synthetic_path, synthetic_data, averaging: str
) -> None:
    config = tiny_config(
        synthetic_path, fusion="hierarchical", epochs=3, weight_averaging=averaging, swa_start=2
    )
    _, uninterrupted = run(config, synthetic_data)

    path = tmp_path / "last.pt"

    def save_and_stop(record, coach):
        save_checkpoint(path, config, coach.state_dict())
        return True  # "crash" after epoch 1

    interrupted = build_coach(config, synthetic_data, CPU, callbacks=[save_and_stop])
    interrupted.fit(evaluate_test=False)
    assert interrupted.epoch == 1

    payload = load_checkpoint(path)
    assert JoyfulConfig.from_dict(payload["config"]) == config
    # Something else uses the global RNG in between: resuming must not depend on it.
    torch.rand(100)
    resumed = build_coach(config, synthetic_data, CPU)
    resumed.load_state_dict(payload["coach"])
    summary = resumed.fit(evaluate_test=True)
    assert without_timing(summary["history"]) == without_timing(uninterrupted["history"])
    assert summary["best_epoch"] == uninterrupted["best_epoch"]
    assert summary["test"] == uninterrupted["test"]


def test_checkpoint_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot be loaded safely"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(UserError, match="not a joyful-tune checkpoint"):
        load_checkpoint(other)


def test_callback_can_stop_training(synthetic_path, synthetic_data) -> None:
    seen = []

    def stop_after_two(record, coach):
        seen.append(record["epoch"])
        return record["epoch"] == 2

    coach = build_coach(
        tiny_config(synthetic_path, epochs=5), synthetic_data, CPU, callbacks=[stop_after_two]
    )
    summary = coach.fit(evaluate_test=False)
    assert seen == [1, 2] and summary["epochs_run"] == 2


def test_huge_learning_rate_raises_non_finite_loss(synthetic_path, synthetic_data) -> None:
    config = tiny_config(synthetic_path, optimizer="sgd", learning_rate=1e12, epochs=3)
    with pytest.raises(NonFiniteLossError, match="non-finite training loss at epoch"):
        run(config, synthetic_data)


def test_nan_features_raise_before_the_step(synthetic_path, synthetic_data) -> None:
    poisoned = copy.deepcopy(synthetic_data)
    for dialogue in poisoned.splits["train"]:
        dialogue.features["a"][0, 0] = np.nan
    coach = build_coach(tiny_config(synthetic_path), poisoned, CPU)
    before = {k: v.detach().clone() for k, v in coach.model.named_parameters()}
    with pytest.raises(NonFiniteLossError) as info:
        coach.fit()
    assert info.value.epoch == 1 and "nan" in str(info.value)
    for name, value in coach.model.named_parameters():  # the optimizer step was not applied
        torch.testing.assert_close(value.detach(), before[name], msg=name)


def test_class_weights_are_inverse_training_frequencies(synthetic_path, synthetic_data) -> None:
    coach = build_coach(tiny_config(synthetic_path, class_weight=True), synthetic_data, CPU)
    labels = np.concatenate([d.labels for d in synthetic_data.splits["train"]])
    share = np.bincount(labels, minlength=4) / len(labels)
    torch.testing.assert_close(coach.nll.weight, torch.tensor(1 / share, dtype=torch.float32))
    assert build_coach(tiny_config(synthetic_path), synthetic_data, CPU).nll.weight is None
    weighted = coach.fit(evaluate_test=False)["history"]
    plain = build_coach(tiny_config(synthetic_path), synthetic_data, CPU).fit(evaluate_test=False)[
        "history"
    ]
    assert weighted[0]["train_loss"]["nll"] != plain[0]["train_loss"]["nll"]


def test_class_absent_from_training_gets_zero_weight(synthetic_path, synthetic_data) -> None:
    data = copy.deepcopy(synthetic_data)
    for dialogue in data.splits["train"]:
        dialogue.labels[dialogue.labels == 3] = 0
    coach = build_coach(tiny_config(synthetic_path, class_weight=True), data, CPU)
    weights = coach.nll.weight.tolist()
    assert weights[3] == 0.0 and all(w > 0 for w in weights[:3])


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "adamw"},
        {"optimizer": "sgd"},
        {"scheduler": "expLR"},
        {"scheduler": "none"},
        {"max_grad_value": 0.1},
        {"concat_gin_gout": True},
        {"use_highway": True},
        {"rnn": "lstm"},
        {"rnn": "gru"},
        {"modalities": "t"},
        {"modalities": "av"},
    ],
)
def test_options_train(synthetic_path, synthetic_data, changes: dict) -> None:
    coach, summary = run(tiny_config(synthetic_path, epochs=1, **changes), synthetic_data)
    assert math.isfinite(summary["history"][0]["train_loss"]["total"])
    assert 0.0 <= summary["test"]["weighted_f1"] <= 1.0


def test_exponential_schedule_decays_the_learning_rate(synthetic_path, synthetic_data) -> None:
    _, summary = run(tiny_config(synthetic_path, scheduler="expLR", epochs=2), synthetic_data)
    assert [r["lr"] for r in summary["history"]] == pytest.approx([1e-3 * 0.95, 1e-3 * 0.95**2])


def test_gradient_clipping_bounds_the_update(synthetic_path, synthetic_data) -> None:
    """SGD without momentum history on step 1: |update| = lr * |clipped grad| <= lr * max_grad_value."""
    config = tiny_config(
        synthetic_path,
        optimizer="sgd",
        learning_rate=1.0,
        max_grad_value=1e-3,
        weight_decay=0.0,
        epochs=1,
        batch_size=100,
    )

    def biggest_update(config: JoyfulConfig) -> float:
        coach = build_coach(config, synthetic_data, CPU)
        before = {k: v.detach().clone() for k, v in coach.model.named_parameters()}
        coach.train_epoch()  # one batch: the whole training split
        return max(
            float((p.detach() - before[k]).abs().max()) for k, p in coach.model.named_parameters()
        )

    clipped = biggest_update(config)
    assert 0 < clipped <= 1e-3 * (1 + 1e-4)  # float32 rounding of the subtraction
    assert biggest_update(config.replace(max_grad_value=-1.0)) > 10 * clipped


def test_training_learns_the_class_signal(synthetic_path, synthetic_data) -> None:
    """Fifteen epochs fit the tiny synthetic training split well above chance (4 classes: about 0.25)."""
    coach = build_coach(
        tiny_config(synthetic_path, epochs=15, learning_rate=1e-2), synthetic_data, CPU
    )
    history = coach.fit(evaluate_test=False)["history"]
    assert history[-1]["train_loss"]["nll"] < 0.8 * history[0]["train_loss"]["nll"]
    assert coach.evaluate("train").accuracy > 0.5


@pytest.mark.parametrize("fusion", ["autofusion", "hierarchical"])
def test_bf16_precision_tracks_fp32(synthetic_path, synthetic_data, fusion: str) -> None:
    """--precision bf16 autocasts the matrix products; losses stay within bfloat16 rounding of fp32."""
    runs = {}
    for precision in ("fp32", "bf16"):
        coach = build_coach(
            tiny_config(synthetic_path, fusion=fusion, precision=precision), synthetic_data, CPU
        )
        runs[precision] = coach.fit(evaluate_test=False)["history"]
    for fp32, bf16 in zip(runs["fp32"], runs["bf16"], strict=True):
        assert fp32["train_loss"]["total"] != bf16["train_loss"]["total"]  # autocast really acted
        assert bf16["train_loss"]["total"] == pytest.approx(fp32["train_loss"]["total"], rel=2e-2)
        assert bf16["dev_loss"] == pytest.approx(fp32["dev_loss"], rel=2e-2)


def test_self_pooling_stays_float32_under_autocast() -> None:
    from joyful.model.self_pooling import self_pool

    x, query = torch.randn(5, 12), torch.randn(12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = self_pool(x.bfloat16(), query, chunk_size=2)
    assert pooled.dtype == torch.float32
    torch.testing.assert_close(pooled, self_pool(x.bfloat16().float(), query, chunk_size=2))


def _trained_while_dev_says(
    config: JoyfulConfig, data: DialogueData, trend: float
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Train `config` while every evaluation of the dev split reports a loss that moves by `trend` an epoch
    (falling: always improving; rising: never), whatever the model does."""
    coach = build_coach(config, data, CPU)
    evaluate, calls = coach.evaluate, []

    def scripted(split: str, model=None):
        result = evaluate(split, model)
        if split == "dev":
            calls.append(split)
            result.loss = 10.0 + trend * len(calls)
        return result

    coach.evaluate = scripted
    history = coach.fit(evaluate_test=False)["history"]
    return {k: v.clone() for k, v in coach.model.state_dict().items()}, history


def test_a_cross_validation_run_never_trains_on_what_its_held_out_fold_says(
    synthetic_path, synthetic_data
) -> None:
    """The held-out fold ranks the setting, so no training decision (the plateau schedule included) may read
    it: a held-out fold whose loss always falls and one whose loss always rises train the same weights."""
    config = tiny_config(synthetic_path, cv_folds=2, cv_fold=1, epochs=4, scheduler_patience=0)
    falling, falling_history = _trained_while_dev_says(config, synthetic_data, -1.0)
    rising, rising_history = _trained_while_dev_says(config, synthetic_data, +1.0)
    assert [r["dev_loss"] for r in falling_history] != [r["dev_loss"] for r in rising_history]
    assert [r["lr"] for r in falling_history] == [r["lr"] for r in rising_history]
    for name, value in falling.items():
        assert torch.equal(value, rising[name]), name


def test_on_the_data_dev_split_the_plateau_schedule_watches_dev_as_the_original(
    synthetic_path, synthetic_data
) -> None:
    """The control of the test above (which could fail): without cross-validation the schedule steps on the dev
    loss as the original does, so a dev loss that never improves cuts the learning rate every epoch."""
    config = tiny_config(synthetic_path, epochs=3, scheduler_patience=0)
    _, falling_history = _trained_while_dev_says(config, synthetic_data, -1.0)
    _, rising_history = _trained_while_dev_says(config, synthetic_data, +1.0)
    assert [r["lr"] for r in falling_history] == pytest.approx([1e-3] * 3)
    assert [r["lr"] for r in rising_history] == pytest.approx([1e-3, 1e-4, 1e-5])
