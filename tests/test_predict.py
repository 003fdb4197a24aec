"""Model files (train.py --save-model) and `python -m joyful.predict`: one model, an ensemble, refusals, rebuild."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DIMS, TINY_MODEL, make_processed, write_pickle

from joyful.cli import main as train_main
from joyful.metrics import weighted_f1
from joyful.model_file import load_model_file
from joyful.predict import main as predict_main

FLAGS = [
    "--dataset",
    "synthetic",
    "--epochs",
    "2",
    "--batch_size",
    str(TINY_MODEL["batch_size"]),
    *[
        arg
        for key in (
            "fusion_pool_dim",
            "fusion_hidden",
            "fusion_latent",
            "hidden_size",
            "seqcontext_nlayer",
            "gnn_nheads",
            "learning_rate",
            "precision",
        )
        for arg in (f"--{key}", str(TINY_MODEL[key]))
    ],
]


def train(tmp_path: Path, data: Path, seed: int) -> tuple[Path, dict]:
    model, metrics = tmp_path / f"models/seed-{seed}.pt", tmp_path / f"metrics-{seed}.json"
    assert (
        train_main(
            [
                *FLAGS,
                "--data",
                str(data),
                "--seed",
                str(seed),
                "--save-model",
                str(model),
                "--metrics-out",
                str(metrics),
                "-q",
            ]
        )
        == 0
    )
    return model, json.loads(metrics.read_text())


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory, synthetic_path) -> dict:
    """Two members trained at seeds 1 and 2, and a best-config file that lists them."""
    folder = tmp_path_factory.mktemp("ensemble")
    members = [train(folder, synthetic_path, seed) for seed in (1, 2)]
    config = members[0][1]["config"]
    document = {
        "schema_version": 4,
        "config": config,
        "ensemble": {
            "members": [
                {
                    "seed": m["config"]["seed"],
                    "path": str(Path("..") / p.relative_to(folder)),
                    "config": m["config"],
                    "dev_weighted_f1": m["best_dev_weighted_f1"],
                }
                for p, m in members
            ]
        },
    }
    (folder / "best").mkdir()
    (folder / "best" / "synthetic.json").write_text(json.dumps(document))
    return {"folder": folder, "config": folder / "best" / "synthetic.json", "members": members}


def test_a_model_file_holds_what_prediction_needs(ensemble) -> None:
    path, metrics = ensemble["members"][0]
    model = load_model_file(path)
    assert model.config.seed == 1 and model.label_names == ("hap", "sad", "neu", "ang")
    assert model.modality_dims == {m: TINY_DIMS[m] for m in "atv"}
    assert model.scores["dev_weighted_f1"] == metrics["best_dev_weighted_f1"]
    assert model.scores["test_weighted_f1"] == metrics["test"]["weighted_f1"]
    assert model.data_sha256 == metrics["data"]["sha256"]


def test_one_model_predicts_what_its_run_measured(
    ensemble, synthetic_path, tmp_path, capsys
) -> None:
    path, metrics = ensemble["members"][0]
    scores = tmp_path / "scores.json"
    assert (
        predict_main(
            ["--model", str(path), "--data", str(synthetic_path), "--scores-out", str(scores)]
        )
        == 0
    )
    result = json.loads(scores.read_text())
    assert result["scores"]["test"]["weighted_f1"] == metrics["test"]["weighted_f1"]
    assert result["same_data_as_training"] is True
    assert "test: " in capsys.readouterr().out


def test_the_ensemble_averages_its_members_probabilities(
    ensemble, synthetic_path, tmp_path
) -> None:
    out, scores = tmp_path / "predictions.csv", tmp_path / "scores.json"
    assert (
        predict_main(
            [
                "--config",
                str(ensemble["config"]),
                "--data",
                str(synthetic_path),
                "--split",
                "all",
                "--out",
                str(out),
                "--scores-out",
                str(scores),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    result = json.loads(scores.read_text())["scores"]
    assert {r["split"] for r in rows} == {"train", "dev", "test"}
    assert len(rows) == sum(s["utterances"] for s in result.values())
    test = [r for r in rows if r["split"] == "test"]
    probabilities = np.array(
        [[float(r[f"p_{n}"]) for n in ("hap", "sad", "neu", "ang")] for r in test]
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    labels = np.array([("hap", "sad", "neu", "ang").index(r["label"]) for r in test])
    assert result["test"]["weighted_f1"] == pytest.approx(
        weighted_f1(labels, probabilities.argmax(axis=1))
    )
    assert [m["weighted_f1"] for m in result["test"]["members"]] == [
        m["test"]["weighted_f1"] for _, m in ensemble["members"]
    ]
    # One member alone is that member.
    assert (
        predict_main(
            [
                "--config",
                str(ensemble["config"]),
                "--data",
                str(synthetic_path),
                "--member",
                "1",
                "--scores-out",
                str(scores),
            ]
        )
        == 0
    )
    assert (
        json.loads(scores.read_text())["scores"]["test"]["weighted_f1"]
        == ensemble["members"][1][1]["test"]["weighted_f1"]
    )


def test_an_ensemble_predicts_the_data_its_config_records_when_no_data_is_given(
    ensemble, synthetic_path, tmp_path, capsys
) -> None:
    document = json.loads(ensemble["config"].read_text())
    recorded = ensemble["config"].with_name(
        "recorded.json"
    )  # beside the original: members are relative to it
    recorded.write_text(
        json.dumps({**document, "data": {"path": str(synthetic_path), "sha256": "x"}})
    )
    implicit, explicit = tmp_path / "implicit.json", tmp_path / "explicit.json"
    assert predict_main(["--config", str(recorded), "--scores-out", str(implicit)]) == 0
    assert f"the file {recorded} records" in capsys.readouterr().out
    assert (
        predict_main(
            [
                "--config",
                str(recorded),
                "--data",
                str(synthetic_path),
                "--scores-out",
                str(explicit),
            ]
        )
        == 0
    )
    assert json.loads(implicit.read_text())["scores"] == json.loads(explicit.read_text())["scores"]
    missing = ensemble["config"].with_name("missing.json")
    missing.write_text(
        json.dumps({**document, "data": {"path": str(tmp_path / "gone.pkl"), "sha256": "x"}})
    )
    assert predict_main(["--config", str(missing)]) == 2
    assert "--data FILE is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dims", "classes", "message"),
    [
        ({"a": 5, "t": 16, "v": 12}, 4, "has features a=5, t=16, v=12, but the model"),
        ({"a": 8, "t": 16}, 4, "has no v (visual) features"),
        (TINY_DIMS, 7, "label"),
    ],
)
def test_a_file_of_another_data_set_is_refused(
    ensemble, tmp_path, capsys, dims, classes, message
) -> None:
    other = write_pickle(tmp_path / "other.pkl", make_processed(classes, "MF", dims, seed=3))
    out = tmp_path / "predictions.csv"
    code = predict_main(
        ["--config", str(ensemble["config"]), "--data", str(other), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    assert (
        code == 2
        and len(err.splitlines()) == 1
        and message in err
        and err.startswith("python -m joyful.predict: error:")
    )
    assert not out.exists()


def test_bad_requests_are_one_line(ensemble, synthetic_path, tmp_path, capsys) -> None:
    cases = [
        (
            ["--config", str(ensemble["config"]), "--data", str(synthetic_path), "--member", "5"],
            "members 0..1",
        ),
        (["--model", str(tmp_path / "none.pt"), "--data", str(synthetic_path)], "does not exist"),
        (["--model", str(ensemble["members"][0][0])], "--data FILE is required"),
        (
            ["--model", str(synthetic_path), "--data", str(synthetic_path)],
            "cannot be loaded safely",
        ),
    ]
    plain = tmp_path / "plain.json"
    plain.write_text(
        json.dumps({"schema_version": 4, "config": ensemble["members"][0][1]["config"]})
    )
    cases.append((["--config", str(plain), "--data", str(synthetic_path)], "no ensemble recorded"))
    for argv, message in cases:
        assert predict_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)


def test_rebuild_recreates_a_missing_member_exactly(
    ensemble, synthetic_path, tmp_path, capsys
) -> None:
    path, metrics = ensemble["members"][1]
    before = load_model_file(path)
    path.rename(tmp_path / "moved.pt")
    assert predict_main(["--config", str(ensemble["config"]), "--data", str(synthetic_path)]) == 2
    assert "--rebuild" in capsys.readouterr().err
    assert predict_main(["--config", str(ensemble["config"]), "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "re-training member seed 2" in out and "reproduced exactly" in out
    after = load_model_file(path)
    assert after.scores == before.scores
    assert all(
        np.array_equal(after.state[k].numpy(), before.state[k].numpy()) for k in before.state
    )


def test_rebuild_refuses_data_other_than_the_recorded_file(
    ensemble, synthetic_path, tmp_path, capsys
) -> None:
    """--rebuild re-trains from the data file the best config records: another file (another sha256) is refused
    in one line before anything trains."""
    from conftest import make_processed, write_pickle

    document = json.loads(ensemble["config"].read_text())
    path, _ = ensemble["members"][0]
    other = write_pickle(
        tmp_path / "other.pkl", make_processed(4, "MF", {"a": 8, "t": 16, "v": 12}, seed=5)
    )
    members = [
        {**m, "path": str(tmp_path / "absent.pt"), "config": {**m["config"], "data": str(other)}}
        for m in document["ensemble"]["members"][:1]
    ]
    best = tmp_path / "best.json"
    best.write_text(
        json.dumps(
            {
                **document,
                "data": {"path": str(synthetic_path), "sha256": "0" * 64},
                "ensemble": {"members": members},
            }
        )
    )
    assert predict_main(["--config", str(best), "--rebuild"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1
        and "is not the data" in err
        and "an exact re-run needs that file" in err
    )
    assert not (tmp_path / "absent.pt").exists()


def test_predict_in_a_fresh_process_reproduces_the_recorded_score_exactly(
    synthetic_path, tmp_path
) -> None:
    """The recorded test score of a model is computed as predict computes it (float32 inference,
    whatever the run trained at: `--precision auto`, bf16 where native): a fresh process, with
    another thread count, and a process that ran other batch shapes first all get it to the bit."""
    import os
    import subprocess
    import sys

    import torch

    model, metrics = tmp_path / "auto.pt", tmp_path / "auto.json"
    assert (
        train_main(
            [
                *FLAGS,
                "--data",
                str(synthetic_path),
                "--save-model",
                str(model),
                "--metrics-out",
                str(metrics),
            ]
        )
        == 0
    )
    recorded = json.loads(metrics.read_text())["test"]["weighted_f1"]
    assert load_model_file(model).scores["test_weighted_f1"] == recorded
    scores = tmp_path / "scores.json"
    for threads in ("1", "2"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "joyful.predict",
                "--model",
                str(model),
                "--data",
                str(synthetic_path),
                "--scores-out",
                str(scores),
            ],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": threads},
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert json.loads(scores.read_text())["scores"]["test"]["weighted_f1"] == recorded
    # This process has built kernels for other shapes (the run above, and this matrix product).
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.randn(37, 91) @ torch.randn(91, 53)
    assert (
        predict_main(
            ["--model", str(model), "--data", str(synthetic_path), "--scores-out", str(scores)]
        )
        == 0
    )
    assert json.loads(scores.read_text())["scores"]["test"]["weighted_f1"] == recorded
