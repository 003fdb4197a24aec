"""train.py: flags from the config, the user's commands, the metrics document, errors as one line + exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY_MODEL, make_processed, tiny_config, without_timing, write_pickle

from joyful import cli
from joyful.coach import Coach
from joyful.config import CONFIG_SCHEMA_VERSION, JoyfulConfig, config_document

# Tiny widths as flags (the flags a user would type to shrink the model).
TINY_FLAGS = [f"--{k}={v}" for k, v in TINY_MODEL.items() if k != "epochs"] + ["--device=cpu"]

# The user's four commands, as they wrote them (issue "The user's extensions").
USER_COMMANDS = {
    "iemocap_4_core": "--dataset=iemocap_4 --modalities=atv --encoder_loss_weight=0.03 --from_begin",
    "iemocap_4_hierarchical": "--dataset=iemocap_4 --modalities=atv --use_hierarchical_fusion "
    "--encoder_loss_weight=0.03 --use_smooth_l1 --from_begin --epochs=50",
    "mosei": "--dataset=mosei --modalities=atv --use_hierarchical_fusion --encoder_loss_weight=0.05 --use_smooth_l1",
    "meld": "--dataset=meld --modalities=atv --use_hierarchical_fusion --encoder_loss_weight=0.03 --use_smooth_l1",
}


def main(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def parse(argv: list[str]) -> JoyfulConfig:
    return cli.resolve_config(vars(cli.build_parser().parse_args(argv)))[0]


def one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("train.py: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)


@pytest.fixture(scope="module")
def shaped_files(tmp_path_factory) -> dict[str, Path]:
    """Random data files shaped like each data set (classes, speakers, modality widths)."""
    folder = tmp_path_factory.mktemp("shaped")
    return {
        "iemocap_4": write_pickle(
            folder / "iemocap_4.pkl", make_processed(4, "MF", {"a": 10, "t": 24, "v": 16}, seed=1)
        ),
        "mosei": write_pickle(
            folder / "mosei.pkl", make_processed(2, "M", {"a": 35, "t": 24, "v": 35}, seed=2)
        ),
        "meld": write_pickle(
            folder / "meld.pkl",
            make_processed(7, "onehot", {"a": 12, "t": 24, "v": 16}, n_speakers=9, seed=3),
        ),
    }


# --- metrics document ----------------------------------------------------------------------------


def test_metrics_out_has_the_documented_fields(tmp_path, synthetic_path, capsys) -> None:
    out = tmp_path / "m" / "metrics.json"
    code, stdout, err = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            synthetic_path,
            "--use_hierarchical_fusion",
            "--epochs",
            "2",
            *TINY_FLAGS,
            "--metrics-out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    assert "best dev wF1" in stdout and "test wF1" in stdout
    document = json.loads(out.read_text())
    assert len(document["history"]) == 2
    for record in document["history"]:
        assert set(record["train_loss"]) >= {"nll", "contrastive", "reconstruction", "gate_reg"}
        assert set(record["gates"]) == {"utterance", "temporal", "forget", "input"}
        assert {"dev_loss", "dev_weighted_f1", "dev_accuracy", "lr"} <= set(record)
    assert 1 <= document["best_epoch"] <= 2
    assert 0 <= document["best_dev_weighted_f1"] <= 1 and 0 <= document["best_dev_accuracy"] <= 1
    test = document["test"]
    assert 0 <= test["weighted_f1"] <= 1 and 0 <= test["accuracy"] <= 1
    assert {"hap", "sad", "neu", "ang"} <= set(test["report"]) and "f1-score" in test["report"][
        "hap"
    ]
    assert document["wall_seconds"] > 0 and document["device"] == "cpu"
    assert document["config"]["fusion"] == "hierarchical" and document["config"]["epochs"] == 2
    assert document["data"]["sha256"] and document["data"]["modality_dims"] == {
        "a": 8,
        "t": 16,
        "v": 12,
    }
    assert document["versions"]["torch"] == torch.__version__


def test_same_command_same_metrics(tmp_path, synthetic_path, capsys) -> None:
    documents = []
    for name in ("a.json", "b.json"):
        code, _, err = main(
            [
                "--dataset=synthetic",
                f"--data={synthetic_path}",
                "--epochs=2",
                *TINY_FLAGS,
                f"--metrics-out={tmp_path / name}",
            ],
            capsys,
        )
        assert code == 0, err
        documents.append(json.loads((tmp_path / name).read_text()))
    assert without_timing(documents[0]["history"]) == without_timing(documents[1]["history"])
    assert documents[0]["test"] == documents[1]["test"]
    assert all(
        record["gates"] == {} for record in documents[0]["history"]
    )  # AutoFusion has no gates


def test_quiet_prints_one_line(synthetic_path, capsys) -> None:
    code, out, _ = main(
        ["--dataset", "synthetic", "--data", synthetic_path, "--epochs", "1", *TINY_FLAGS, "-q"],
        capsys,
    )
    assert code == 0 and len(out.strip().splitlines()) == 1 and out.startswith("best dev wF1")


# --- config files ---------------------------------------------------------------------------------


def test_config_file_roundtrip_and_flags_override(tmp_path, synthetic_path, capsys) -> None:
    config = tiny_config(
        synthetic_path,
        fusion="hierarchical",
        reconstruction_loss="smooth_l1",
        gate_reg_weight=0.05,
        wp=3,
        epochs=1,
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_document(config)))
    assert parse(["--config", str(path)]) == config
    overridden = parse(
        ["--config", str(path), "--wp", "5", "--seed", "7", "--fusion", "autofusion"]
    )
    assert overridden == config.replace(wp=5, seed=7, fusion="autofusion")
    # A best-config file from the tuning service carries extra top-level keys; only `config` is read.
    best = {**config_document(config), "metrics": {"dev_weighted_f1": 0.5}, "search": "x"}
    path.write_text(json.dumps(best))
    out = tmp_path / "metrics.json"
    code, _, err = main(["--config", path, "--metrics-out", out, "--device", "cpu"], capsys)
    assert code == 0, err
    assert JoyfulConfig.from_dict(json.loads(out.read_text())["config"]) == config


@pytest.mark.parametrize(
    "document,fragments",
    [
        (
            {"schema_version": 4, "config": {"learnin_rate": 0.1}},
            ["unknown setting(s) learnin_rate"],
        ),
        ({"schema_version": 4, "config": {"epochs": "3"}}, ["'epochs' must be of type int"]),
        ({"schema_version": CONFIG_SCHEMA_VERSION + 1, "config": {}}, ["upgrade joyful-tune"]),
        (
            {"schema_version": 4, "config": {"dataset": "meld"}},
            ["is for data set 'meld'", "--dataset is 'iemocap_4'"],
        ),
        ({"config": {}}, ["'schema_version' must be an integer"]),
    ],
)
def test_bad_config_file_exits_2_with_one_line(
    tmp_path, capsys, document: dict, fragments: list[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document))
    code, out, err = main(["--config", path, "--dataset", "iemocap_4"], capsys)
    assert code == 2 and out == ""
    one_line_error(err, str(path), *fragments)


# --- flags -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--optimizer2", "sgd"],
        ["--n_speakers", "9"],
        ["--num_bases", "7"],
        ["--tuning"],
        ["--tag", "x"],
        ["--encoding", "x"],
        ["--use_pe_in_seqcontext"],
        ["--trans_encoding"],
    ],
)
def test_refused_original_flags_exit_2(capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--dataset", "iemocap_4", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{argv[0]} is not supported" in err


@pytest.mark.parametrize(
    "argv,flag",
    [
        (["--encoder_loss_weight=-0.1"], "--encoder_loss_weight"),
        (["--cl_loss_weight", "nan"], "--cl_loss_weight"),
        (["--gate_reg_weight=inf"], "--gate_reg_weight"),
        (["--encoder-loss-weight", "-1"], "--encoder_loss_weight"),
        (["--modalities", "atx"], "--modalities"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    capsys, synthetic_path, argv: list[str], flag: str
) -> None:
    code, _, err = main(["--dataset", "synthetic", "--data", synthetic_path, *argv], capsys)
    assert code == 2
    one_line_error(err, flag)


def test_help_lists_the_flags(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--use_hierarchical_fusion",
        "--use_smooth_l1",
        "--encoder_loss_weight",
        "--gate_reg_weight",
        "--gate_lr_scale",
        "--metrics-out",
        "--checkpoint-dir",
        "--config",
        "--data",
        "--device",
        "--seed",
    ):
        assert flag in text, flag
    assert "--optimizer2" not in text  # refused flags are not advertised


def test_argparse_rejects_bad_choices_and_types(capsys) -> None:
    for argv in (["--fusion", "gated"], ["--epochs", "two"], ["--no-such-flag"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize("name", USER_COMMANDS)
def test_user_commands_parse_as_written(name: str) -> None:
    argv = USER_COMMANDS[name].split()
    values = vars(cli.build_parser().parse_args(argv))
    config, _ = cli.resolve_config(values)
    dataset = argv[0].split("=")[1]
    assert config.dataset == dataset and config.modalities == "atv"
    if name == "iemocap_4_core":
        assert (config.fusion, config.reconstruction_loss, config.encoder_loss_weight) == (
            "autofusion",
            "mse",
            0.03,
        )
        assert config.epochs == 50 and values["from_begin"] is True
    else:
        assert (config.fusion, config.reconstruction_loss) == ("hierarchical", "smooth_l1")
        assert config.encoder_loss_weight == (0.05 if dataset == "mosei" else 0.03)
    if name == "iemocap_4_hierarchical":
        assert config.epochs == 50 and values["from_begin"] is True


@pytest.mark.parametrize("name", USER_COMMANDS)
def test_user_commands_run_on_data_shaped_like_their_data_set(
    tmp_path, capsys, shaped_files, name: str
) -> None:
    argv = USER_COMMANDS[name].split()
    dataset = argv[0].split("=")[1]
    out = tmp_path / "metrics.json"
    code, stdout, err = main(
        [
            *argv,
            f"--data={shaped_files[dataset]}",
            "--epochs=2",
            *TINY_FLAGS,
            f"--metrics-out={out}",
        ],
        capsys,
    )
    assert code == 0, err
    assert "warning" not in err
    document = json.loads(out.read_text())
    n_classes = {"iemocap_4": 4, "mosei": 2, "meld": 7}[dataset]
    assert (
        len(
            [
                k
                for k in document["test"]["report"]
                if k not in ("accuracy", "macro avg", "weighted avg")
            ]
        )
        == n_classes
    )
    assert document["config"]["dataset"] == dataset and len(document["history"]) == 2
    if name != "iemocap_4_core":
        assert (
            document["history"][0]["gates"] and document["history"][0]["train_loss"]["gate_reg"] > 0
        )


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--use_smooth_l1"], "--use_smooth_l1"),
        (["--reconstruction_loss", "smooth_l1"], "--use_smooth_l1"),
        (["--gate_reg_weight", "0.1"], "--gate_reg_weight"),
        (["--gate_lr_scale", "0.1"], "--gate_lr_scale"),
    ],
)
def test_hierarchical_only_flags_warn_without_hierarchical_fusion(
    capsys, synthetic_path, argv, fragment
) -> None:
    code, _, err = main(
        ["--dataset", "synthetic", "--data", synthetic_path, "--epochs", "1", *TINY_FLAGS, *argv],
        capsys,
    )
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert (
        len(warnings) == 1
        and fragment in warnings[0]
        and "--use_hierarchical_fusion" in warnings[0]
    )
    code, _, err = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            synthetic_path,
            "--epochs",
            "1",
            *TINY_FLAGS,
            *argv,
            "--use_hierarchical_fusion",
        ],
        capsys,
    )
    assert code == 0 and "warning" not in err


def test_data_errors_exit_2(tmp_path, capsys, shaped_files) -> None:
    code, _, err = main(["--dataset", "iemocap_4", "--data", tmp_path / "missing.pkl"], capsys)
    assert code == 2
    one_line_error(err, "does not exist")
    meld_text = write_pickle(
        tmp_path / "no_visual.pkl", make_processed(7, "onehot", {"a": 3, "t": 4}, n_speakers=9)
    )
    code, _, err = main(["--dataset", "meld", "--data", meld_text, "--modalities", "atv"], capsys)
    assert code == 2
    one_line_error(err, "has no v (visual) features")
    code, _, err = main(
        ["--dataset", "iemocap", "--data", shaped_files["meld"]], capsys
    )  # 9 speakers, 2 allowed
    assert code == 2
    one_line_error(err, "speaker index")
    code, _, err = main(["--dataset", "nope", "--data", shaped_files["meld"]], capsys)
    assert code == 2
    one_line_error(err, "unknown data set 'nope'", "iemocap_4", "meld")
    code, _, err = main(["--dataset", "../meld"], capsys)
    assert code == 2
    one_line_error(err, "path separators")


def test_default_data_location(tmp_path, capsys, shaped_files) -> None:
    folder = tmp_path / "data" / "iemocap_4"
    folder.mkdir(parents=True)
    (folder / "data_iemocap_4.pkl").write_bytes(shaped_files["iemocap_4"].read_bytes())
    code, _, err = main(
        [
            "--dataset",
            "iemocap_4",
            "--data_dir_path",
            tmp_path / "data",
            "--epochs",
            "1",
            *TINY_FLAGS,
        ],
        capsys,
    )
    assert code == 0, err


def test_dataset_spec_file(tmp_path, capsys) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"name": "calls", "label_names": ["ok", "angry", "sad"], "n_speakers": 2})
    )
    data = write_pickle(tmp_path / "calls.pkl", make_processed(3, "MF", {"t": 6}))
    out = tmp_path / "m.json"
    code, _, err = main(
        [
            "--dataset",
            "calls",
            "--dataset-spec",
            spec,
            "--data",
            data,
            "--modalities",
            "t",
            "--epochs",
            "1",
            *TINY_FLAGS,
            "--metrics-out",
            out,
        ],
        capsys,
    )
    assert code == 0, err
    assert {"ok", "angry", "sad"} <= set(json.loads(out.read_text())["test"]["report"])


def test_device_errors(capsys, synthetic_path) -> None:
    code, _, err = main(
        ["--dataset", "synthetic", "--data", synthetic_path, "--device", "tpu"], capsys
    )
    assert code == 2
    one_line_error(err, "--device")
    if not torch.cuda.is_available():
        code, _, err = main(
            ["--dataset", "synthetic", "--data", synthetic_path, "--device", "cuda:0"], capsys
        )
        assert code == 2
        one_line_error(err, "CUDA is not available")


# --- checkpoints ------------------------------------------------------------------------------------------


def test_checkpoint_dir_resume_equals_an_uninterrupted_run(
    tmp_path, capsys, monkeypatch, synthetic_path
) -> None:
    base = [
        "--dataset",
        "synthetic",
        "--data",
        synthetic_path,
        "--use_hierarchical_fusion",
        "--epochs",
        "3",
        *TINY_FLAGS,
    ]
    code, _, err = main([*base, "--metrics-out", tmp_path / "whole.json"], capsys)
    assert code == 0, err
    whole = json.loads((tmp_path / "whole.json").read_text())

    # Crash at the start of epoch 2, after epoch 1's checkpoint was written.
    real_train_epoch = Coach.train_epoch

    def crash_in_epoch_two(self):
        if self.epoch == 1:
            raise KeyboardInterrupt("simulated crash")
        return real_train_epoch(self)

    checkpoints = tmp_path / "ckpt"
    monkeypatch.setattr(Coach, "train_epoch", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        main([*base, "--checkpoint-dir", checkpoints], capsys)
    monkeypatch.undo()
    assert (checkpoints / "last.pt").exists()

    code, out, err = main(
        [*base, "--checkpoint-dir", checkpoints, "--metrics-out", tmp_path / "resumed.json"], capsys
    )
    assert code == 0, err
    assert "resumed from" in out and "after epoch 1" in out
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert without_timing(resumed["history"]) == without_timing(whole["history"])
    assert resumed["test"] == whole["test"] and resumed["best_epoch"] == whole["best_epoch"]

    # Running the finished command again resumes after the last epoch and reports the same result.
    code, out, err = main(
        [*base, "--checkpoint-dir", checkpoints, "--metrics-out", tmp_path / "done.json"], capsys
    )
    assert code == 0, err
    assert "after epoch 3" in out
    done = json.loads((tmp_path / "done.json").read_text())
    assert (
        without_timing(done["history"]) == without_timing(whole["history"])
        and done["test"] == whole["test"]
    )

    # --from_begin ignores the (now finished) checkpoint and trains all epochs again: same result.
    code, out, err = main(
        [
            *base,
            "--checkpoint-dir",
            checkpoints,
            "--from_begin",
            "--metrics-out",
            tmp_path / "again.json",
        ],
        capsys,
    )
    assert code == 0, err
    assert "resumed" not in out
    again = json.loads((tmp_path / "again.json").read_text())
    assert without_timing(again["history"]) == without_timing(whole["history"])

    # A checkpoint written with another config is not silently reused.
    code, _, err = main([*base, "--learning_rate=0.002", "--checkpoint-dir", checkpoints], capsys)
    assert code == 2
    one_line_error(err, "was written with another config", "--from_begin")


def test_model_ckpt_initialises_weights(tmp_path, capsys, synthetic_path) -> None:
    base = ["--dataset", "synthetic", "--data", synthetic_path, "--epochs", "1", *TINY_FLAGS]
    code, _, err = main([*base, "--checkpoint-dir", tmp_path], capsys)
    assert code == 0, err
    code, out, err = main([*base, "--model_ckpt", tmp_path / "last.pt"], capsys)
    assert code == 0, err
    assert "initialised weights from" in out
    code, _, err = main([*base, "--model_ckpt", tmp_path / "absent.pt"], capsys)
    assert code == 2
    one_line_error(err, "does not exist")


# --- the script itself ---------------------------------------------------------------------------------


def _script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_train_py_runs_the_readme_command(tmp_path, shaped_files) -> None:
    """`python train.py --dataset="iemocap_4" --modalities="atv" --from_begin --epochs=50` (tiny epochs here)."""
    out = tmp_path / "metrics.json"
    result = _script(
        [
            "--dataset=iemocap_4",
            "--modalities=atv",
            "--from_begin",
            "--epochs=50",
            f"--data={shaped_files['iemocap_4']}",
            "--epochs=1",
            *TINY_FLAGS,
            "--num_threads=1",
            f"--metrics-out={out}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["config"]["epochs"] == 1


@pytest.mark.slow
def test_train_py_error_is_one_line_and_exit_2(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"schema_version": 4, "config": {"bogus": 1}}))
    result = _script(["--config", path], tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    one_line_error(result.stderr, "unknown setting(s) bogus")


def test_a_config_file_checks_that_its_rerun_reads_its_data(
    tmp_path, synthetic_path, capsys
) -> None:
    """`train.py --config` compares the data with the facts the file recorded: other widths or labels are
    refused (exit 2, one line, nothing trained); the same shape with another sha256 is a one-line warning."""
    metrics = tmp_path / "m.json"
    code, _, _ = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            synthetic_path,
            "--epochs",
            "1",
            *TINY_FLAGS,
            "--metrics-out",
            metrics,
            "-q",
        ],
        capsys,
    )
    assert code == 0
    run = json.loads(metrics.read_text())
    assert run["data"]["label_values"] == [0, 1, 2, 3] and run["data"]["modality_dims"] == {
        "a": 8,
        "t": 16,
        "v": 12,
    }
    config = tmp_path / "best.json"
    config.write_text(
        json.dumps(
            {
                "schema_version": CONFIG_SCHEMA_VERSION,
                "config": run["config"],
                "data": {
                    k: run["data"][k] for k in ("path", "sha256", "modality_dims", "label_values")
                },
            }
        )
    )
    code, _, err = main(["--config", config, "-q"], capsys)
    assert code == 0 and "warning" not in err
    cases = {
        "widths": (make_processed(4, "MF", {"a": 5, "t": 16, "v": 12}, seed=1), "feature widths"),
        "labels": (make_processed(2, "MF", {"a": 8, "t": 16, "v": 12}, seed=1), "labels"),
    }
    for name, (content, fragment) in cases.items():
        other = write_pickle(tmp_path / f"{name}.pkl", content)
        out = tmp_path / f"{name}.json"
        code, _, err = main(
            ["--config", config, "--data", other, "--metrics-out", out, "-q"], capsys
        )
        one_line_error(err, f"is not the data --config {config} was tuned on: its {fragment}")
        assert code == 2 and not out.exists()
    same_shape = write_pickle(
        tmp_path / "same_shape.pkl",
        make_processed(
            4, "MF", {"a": 8, "t": 16, "v": 12}, seed=1, counts={"train": 8, "dev": 4, "test": 4}
        ),
    )
    code, _, err = main(["--config", config, "--data", same_shape, "-q"], capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("warning: ")
        and "same feature widths and labels" in lines[0]
    )


def test_the_committed_meld_winner_refuses_data_of_another_data_set(
    tmp_path, synthetic_path, capsys
) -> None:
    """A MELD best config re-run on the synthetic file (other widths, other labels)."""
    best = REPO / "results" / "best_configs" / "meld_text.json"
    out = tmp_path / "m.json"
    code, _, err = main(
        ["--config", best, "--data", synthetic_path, "--epochs", "1", "--metrics-out", out], capsys
    )
    one_line_error(
        err, "is not the data --config", "tuned on: its feature widths are {'a': 8, 't': 16}"
    )
    assert code == 2 and not out.exists()


def test_a_result_recorded_in_bf16_is_not_rerun_where_bf16_is_emulated(
    tmp_path, synthetic_path, capsys, monkeypatch
) -> None:
    """A best config records the precision its run used (`auto` resolved). On a CPU without native bf16 a bf16
    result cannot be re-run exactly: refused in one line with the two ways on; `--precision fp32` is the
    documented non-exact re-run. The capability probe is the only thing mocked (this machine may have bf16)."""
    from joyful import runtime

    metrics = tmp_path / "m.json"
    code, _, _ = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            synthetic_path,
            "--epochs",
            "1",
            *TINY_FLAGS,
            "--metrics-out",
            metrics,
            "-q",
        ],
        capsys,
    )
    run = json.loads(metrics.read_text())
    config = tmp_path / "best.json"
    config.write_text(
        json.dumps(
            {
                "schema_version": CONFIG_SCHEMA_VERSION,
                "config": {**run["config"], "precision": "bf16"},
            }
        )
    )
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    out = tmp_path / "again.json"
    code, _, err = main(["--config", config, "--device", "cpu", "--metrics-out", out, "-q"], capsys)
    one_line_error(
        err,
        f"--config {config} was trained with --precision bf16",
        "--precision fp32 for a non-exact",
    )
    assert code == 2 and not out.exists()
    code, _, _ = main(
        ["--config", config, "--device", "cpu", "--precision", "fp32", "--metrics-out", out, "-q"],
        capsys,
    )
    assert code == 0 and json.loads(out.read_text())["precision"]["used"] == "fp32"


def test_a_saved_model_records_the_precision_it_ran_at(tmp_path, synthetic_path, capsys) -> None:
    from joyful.model_file import load_model_file

    model = tmp_path / "m.pt"
    code, _, _ = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            synthetic_path,
            "--epochs",
            "1",
            *TINY_FLAGS,
            "--precision",
            "auto",
            "--save-model",
            model,
            "-q",
        ],
        capsys,
    )
    assert code == 0 and load_model_file(model).config.precision in ("fp32", "bf16")
