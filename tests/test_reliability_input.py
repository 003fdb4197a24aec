"""Bad input is refused through the real CLIs: one line naming the problem and the fix, exit 2, nothing written.

`train.py` and `tune/search.py` run as scripts (see tune_helpers.CliRunner). "No Ray
started" is checked on Ray's own temp folder: every case points RAY_TMPDIR at an
empty folder, and Ray would create `ray/` in it on start.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from tune_helpers import (
    REPO,
    CliRunner,
    files_under,
    remove_tree,
    run_search,
    search_args,
    search_env,
    short_tmpdir,
    space_document,
    stop_ray,
    tiny_data,
    write_data,
    write_space,
)

from joyful.checkpoint import load_checkpoint
from joyful.errors import UserError

TRAIN, SEARCH = "train.py", "tune/search.py"


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    runner = CliRunner()
    yield runner
    runner.close()


@pytest.fixture
def ray_tmp(tmp_path: Path) -> Path:
    folder = tmp_path / "raytmp"
    folder.mkdir()
    return folder


def refused(
    done: subprocess.CompletedProcess,
    *fragments: str,
    ray_tmp: Path | None = None,
    untouched: tuple[Path, ...] = (),
) -> str:
    """Exit 2 with one error line holding every fragment; no Ray started; nothing under `untouched` written."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (
        f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
    )
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr}"
    message = lines[0]
    assert message.startswith(("train.py: error: ", "tune/search.py: error: ")), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in done.stdout + done.stderr
    if ray_tmp is not None:
        assert not (ray_tmp / "ray").exists(), "Ray was started"
    for folder in untouched:
        assert files_under(folder) == [], f"files written under {folder}: {files_under(folder)}"
    return message


# --- data files: the same refusals from both CLIs ------------------------------------------------


class _Marker:
    """Unpickling this runs `function(*args)` (the classic pickle exploit); here it would create a marker file."""

    def __init__(self, function: Callable, *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple:
        return self.function, self.args


def _splits_with(first_train: Any) -> dict:
    data = tiny_data()
    data["train"][0] = first_train
    return data


def _mutated(change: Callable[[dict], None], **kwargs: Any) -> dict:
    data = tiny_data(**kwargs)
    change(data)
    return data


def _set(record: Any, **attributes: Any) -> None:
    record.__dict__.update(attributes)


def _widen_one_dialogue(data: dict) -> None:
    record = data["dev"][0]
    _set(record, audio=[np.zeros(9, np.float32) for _ in record.audio])


def _widen_one_utterance(data: dict) -> None:
    record = data["train"][0]
    audio = list(record.audio)
    audio[1] = np.zeros(9, np.float32)
    _set(record, audio=audio)


def _label_out_of_map(data: dict) -> None:
    record = data["train"][1]
    _set(record, label=[7, *record.label[1:]])


def _empty_dev(data: dict) -> None:
    data["dev"] = []


def _inf_audio(data: dict) -> None:
    record = data["train"][4]
    audio = [np.array(v, np.float32) for v in record.audio]
    audio[2][3] = np.inf
    _set(record, audio=audio)


def _one_label_too_many(data: dict) -> None:
    record = data["dev"][1]
    _set(
        record,
        label=[*record.label, 0],
        speaker=[*record.speaker, record.speaker[0]],
        audio=[*record.audio, record.audio[0]],
        sbert_sentence_embeddings=np.concatenate(
            [record.sbert_sentence_embeddings, record.sbert_sentence_embeddings[:1]]
        ),
    )


def _nan_feature(data: dict) -> None:
    record = data["test"][0]
    text = [np.array(v, np.float32) for v in record.sbert_sentence_embeddings]
    text[0][0] = np.nan
    _set(record, sbert_sentence_embeddings=np.stack(text))


def _truncated(path: Path) -> None:
    raw = pickle.dumps(tiny_data(), protocol=4)
    path.write_bytes(raw[: len(raw) // 2])


# name -> (how to make the file at `path`, fragments of the expected message)
DATA_CASES: dict[str, tuple[Callable[[Path], Any], tuple[str, ...]]] = {
    "missing": (lambda path: None, ("does not exist", "--data")),
    "directory": (lambda path: path.mkdir(), ("is a folder", "pass the .pkl file itself")),
    "empty": (lambda path: path.write_bytes(b""), ("is empty",)),
    "truncated": (_truncated, ("not a readable data pickle", "truncated or corrupt")),
    "corrupt": (
        lambda path: path.write_bytes(os.urandom(64) + b"not a pickle"),
        ("not a readable data pickle",),
    ),
    "text": (
        lambda path: path.write_text("dialogue,label\n1,2\n"),
        ("not a readable data pickle",),
    ),
    "foreign-class": (
        lambda path: write_data(path, _splits_with(collections.Counter(a=1))),
        ("refused to load class collections.Counter", "nothing from the file was run"),
    ),
    "missing-modality": (
        lambda path: write_data(path, tiny_data(dims={"a": 8, "t": 16})),
        ("has no v (visual) features", "it has: at", "--modalities at"),
    ),
    "widths-across-dialogues": (
        lambda path: write_data(path, _mutated(_widen_one_dialogue)),
        ("[dev] dialogue", "utterance 0 audio: width 9", "audio is 8 wide"),
    ),
    "widths-within-dialogue": (
        lambda path: write_data(path, _mutated(_widen_one_utterance)),
        ("[train] dialogue", "utterance 1 audio: vector of width 9", "has width 8"),
    ),
    "label-out-of-map": (
        lambda path: write_data(path, _mutated(_label_out_of_map)),
        (
            "[train] dialogue",
            "utterance 0: label 7 is outside the label map of 'synthetic'",
            "0..3: hap, sad, neu, ang",
        ),
    ),
    "empty-split": (lambda path: write_data(path, _mutated(_empty_dev)), ("split 'dev' is empty",)),
    "nan-feature": (
        lambda path: write_data(path, _mutated(_nan_feature)),
        ("[test] dialogue", "utterance 0 text: feature 0 is nan"),
    ),
    "inf-feature": (
        lambda path: write_data(path, _mutated(_inf_audio)),
        ("[train] dialogue", "utterance 2 audio: feature 3 is inf"),
    ),
    "rows-for-labels": (
        lambda path: write_data(path, _mutated(_one_label_too_many)),
        ("[dev] dialogue", "visual:", "feature rows for", "labels"),
    ),
}


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--dataset",
        "synthetic",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--metrics-out",
        str(out / "metrics.json"),
        "--checkpoint-dir",
        str(out / "ckpt"),
        "--quiet",
        *extra,
    ]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", [TRAIN, SEARCH])
@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_file_is_refused(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, case: str, script: str
) -> None:
    make, fragments = DATA_CASES[case]
    data = tmp_path / "data.pkl"
    make(data)
    out = tmp_path / "out"
    if script == TRAIN:
        done = cli(TRAIN, *_train_args(data, out), env={"RAY_TMPDIR": str(ray_tmp)})
    else:
        space = write_space(tmp_path / "space.yaml")
        done = cli(SEARCH, *search_args(data, space, out), env={"RAY_TMPDIR": str(ray_tmp)})
    refused(done, str(data), *fragments, ray_tmp=ray_tmp, untouched=(out,))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", [TRAIN, SEARCH])
@pytest.mark.parametrize(
    ("dataset", "fragments"),
    [
        (
            "nosuch",
            (
                "unknown data set 'nosuch'",
                "valid: iemocap, iemocap_4, meld, meld_text, mosei, synthetic",
                "--dataset-spec",
            ),
        ),
        ("../synthetic", ("must be a plain name", "without path separators")),
        ("a/b", ("must be a plain name",)),
        ("..", ("must be a plain name",)),
    ],
)
def test_bad_dataset_name_is_refused(
    cli: CliRunner,
    tmp_path: Path,
    ray_tmp: Path,
    script: str,
    dataset: str,
    fragments: tuple[str, ...],
) -> None:
    data = write_data(tmp_path / "data.pkl")
    out = tmp_path / "out"
    if script == TRAIN:
        args = _train_args(data, out)
        args[1] = dataset
    else:
        args = search_args(data, write_space(tmp_path / "space.yaml"), out)
        args[1] = dataset
    refused(
        cli(script, *args, env={"RAY_TMPDIR": str(ray_tmp)}),
        *fragments,
        ray_tmp=ray_tmp,
        untouched=(out,),
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", [TRAIN, SEARCH])
@pytest.mark.parametrize("payload", ["os.system", "builtins.open", "subprocess.Popen"])
def test_pickle_that_runs_code_on_load_is_refused_before_running(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, script: str, payload: str
) -> None:
    marker = tmp_path / "pwned"
    exploit = {
        "os.system": _Marker(os.system, f"touch {marker}"),
        "builtins.open": _Marker(open, str(marker), "w"),
        "subprocess.Popen": _Marker(subprocess.Popen, ["touch", str(marker)]),
    }[payload]
    data = write_data(tmp_path / "data.pkl", {"train": [exploit], "dev": [], "test": []})
    # The payload is real: a plain unpickler would create the marker (checked in a separate process).
    control = tmp_path / "control"
    control_exploit = {
        "os.system": _Marker(os.system, f"touch {control}"),
        "builtins.open": _Marker(open, str(control), "w"),
        "subprocess.Popen": _Marker(subprocess.Popen, ["touch", str(control)]),
    }[payload]
    control_file = write_data(tmp_path / "control.pkl", control_exploit)
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import pickle, time; pickle.loads(open({str(control_file)!r}, 'rb').read());"
            " time.sleep(0.5)",
        ],
        check=True,
        timeout=60,
    )
    assert control.exists()

    out = tmp_path / "out"
    if script == TRAIN:
        done = cli(TRAIN, *_train_args(data, out), env={"RAY_TMPDIR": str(ray_tmp)})
    else:
        done = cli(
            SEARCH,
            *search_args(data, write_space(tmp_path / "space.yaml"), out),
            env={"RAY_TMPDIR": str(ray_tmp)},
        )
    qualified = {
        "os.system": "posix.system",
        "builtins.open": "io.open",
        "subprocess.Popen": "subprocess.Popen",
    }
    message = refused(
        done,
        "refused to load class",
        "nothing from the file was run",
        ray_tmp=ray_tmp,
        untouched=(out,),
    )
    assert qualified[payload] in message or payload in message
    assert not marker.exists()


# --- search-space files (tune/search.py) ----------------------------------------------------------


def _space_with(**changes: Any) -> dict:
    document = space_document()
    for dotted, value in changes.items():
        target = document
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return document


_DELETE = object()
ELW = "parameters__encoder_loss_weight"
SPACE_CASES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "yaml-syntax": (
        "dataset: synthetic\nbudget: {num_samples: 2\nparameters: [\n",
        ("invalid YAML", "line"),
    ),
    "unknown-top-level-key": (
        _space_with(paramters={}),
        ("unknown key 'paramters'", "did you mean 'parameters'"),
    ),
    "unknown-parameter-key": (
        _space_with(**{f"{ELW}__lo": 0.01}),
        ("unknown key 'lo'", "did you mean 'low'"),
    ),
    "unknown-parameter": (
        _space_with(parameters={"encoder_weight": {"type": "float", "low": 0.1, "high": 1.0}}),
        ("'encoder_weight' is not a JoyfulConfig setting", "did you mean"),
    ),
    "low-above-high": (
        _space_with(**{f"{ELW}__low": 0.1, f"{ELW}__high": 0.01}),
        ("low 0.1 > high 0.01",),
    ),
    "log-low-zero": (
        _space_with(**{f"{ELW}__low": 0.0}),
        ("log: true needs low > 0", "got low 0.0"),
    ),
    "empty-choices": (
        _space_with(parameters={"fusion": {"type": "categorical", "choices": []}}, baseline={}),
        ("needs a non-empty list of choices",),
    ),
    "unknown-type": (
        _space_with(**{f"{ELW}__type": "normal"}),
        ("'normal' is not one of float, int, categorical",),
    ),
    "condition-on-unknown-parameter": (
        _space_with(**{f"{ELW}__when": {"fusoin": "hierarchical"}}),
        ("fusoin",),
    ),
    "negative-loss-weight": (
        _space_with(fixed={**space_document()["fixed"], "cl_loss_weight": -0.5}),
        ("--cl_loss_weight is -0.5, but must be a finite number >= 0",),
    ),
    "infinite-loss-weight": (
        _space_with(fixed={**space_document()["fixed"], "cl_loss_weight": float("inf")}),
        ("--cl_loss_weight is inf, but must be a finite number",),
    ),
    "nan-search-bound": (_space_with(**{f"{ELW}__high": float("nan")}), ("must be a number",)),
    "budget-num-samples-zero": (
        _space_with(budget__num_samples=0),
        ("budget.num_samples is 0, but must be >= 1",),
    ),
    "space-for-another-dataset": (
        _space_with(dataset="iemocap_4"),
        ("is for 'iemocap_4', not 'synthetic'",),
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(SPACE_CASES))
def test_bad_search_space_is_refused(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, case: str
) -> None:
    content, fragments = SPACE_CASES[case]
    space = tmp_path / "space.yaml"
    space.write_text(
        content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    )
    out = tmp_path / "out"
    done = cli(
        SEARCH,
        *search_args(write_data(tmp_path / "data.pkl"), space, out),
        env={"RAY_TMPDIR": str(ray_tmp)},
    )
    refused(done, "space.yaml", *fragments, ray_tmp=ray_tmp, untouched=(out,))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--num-samples", "0"], ("--num-samples is 0, but must be >= 1",)),
        (["--num-samples", "-3"], ("--num-samples is -3, but must be >= 1",)),
        (["--max-epochs", "0"], ("--max-epochs is 0, but must be >= 1",)),
        (["--cpus-per-trial", "0"], ("--cpus-per-trial is 0.0, but must be > 0",)),
        (["--max-failures", "-2"], ("--max-failures is -2, but must be >= -1",)),
        (["--checkpoint-every", "0"], ("--checkpoint-every is 0, but must be >= 1",)),
    ],
)
def test_bad_search_flag_is_refused(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, flags: list[str], fragments: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    args = search_args(
        write_data(tmp_path / "data.pkl"), write_space(tmp_path / "space.yaml"), out, "exp", *flags
    )
    refused(
        cli(SEARCH, *args, env={"RAY_TMPDIR": str(ray_tmp)}),
        *fragments,
        ray_tmp=ray_tmp,
        untouched=(out,),
    )


# --- where results and experiments go ----------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "where",
    [
        "results-under-file",
        "results-in-proc",
        "storage-under-file",
        "storage-in-proc",
        "storage-bad-uri",
    ],
)
def test_unusable_results_or_storage_path_fails_before_any_trial(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, where: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = tmp_path / "out"
    args = search_args(write_data(tmp_path / "data.pkl"), write_space(tmp_path / "space.yaml"), out)
    flag, value, fragments = {
        "results-under-file": (
            "--results-dir",
            str(blocker / "results"),
            ("--results-dir", "is not writable"),
        ),
        "results-in-proc": (
            "--results-dir",
            "/proc/joyful-results",
            ("--results-dir", "is not writable"),
        ),
        "storage-under-file": (
            "--storage-path",
            str(blocker / "ray"),
            ("--storage-path", "is a file, not a folder"),
        ),
        "storage-in-proc": (
            "--storage-path",
            "/proc/1/joyful-ray",
            ("--storage-path", "not writable"),
        ),
        "storage-bad-uri": (
            "--storage-path",
            "nosuch://bucket/x",
            ("--storage-path", "not a storage URI"),
        ),
    }[where]
    args[args.index(flag) + 1] = value
    refused(
        cli(SEARCH, *args, env={"RAY_TMPDIR": str(ray_tmp)}),
        *fragments,
        ray_tmp=ray_tmp,
        untouched=(out, blocker.parent / "ray"),
    )
    assert blocker.read_text() == "not a folder"
    if where.startswith("storage"):  # checked before the results folders are created
        assert not (out / "results").exists()


@pytest.mark.parametrize("resume", [False, True])
def test_existing_or_missing_experiment_is_refused(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, resume: bool
) -> None:
    """Without --resume an experiment folder that exists is never reused; with it, a --name that has
    no experiment is refused (tests/test_reliability_faults.py covers a resume that works)."""
    out = tmp_path / "out"
    args = search_args(
        write_data(tmp_path / "data.pkl"), write_space(tmp_path / "space.yaml"), out, "exp"
    )
    experiment = out / "ray" / "exp" / "synthetic"
    if resume:
        fragments = ("--resume: no experiment to resume at", "check --name and --storage-path")
    else:
        experiment.mkdir(parents=True)
        fragments = (f"experiment {experiment} exists", "pass --resume")
    refused(
        cli(SEARCH, *args, *(["--resume"] if resume else []), env={"RAY_TMPDIR": str(ray_tmp)}),
        *fragments,
        ray_tmp=ray_tmp,
        untouched=(out,),
    )
    assert experiment.exists() != resume and not (out / "results").exists()


# --- config JSON and flags (train.py) -------------------------------------------------------------------

CONFIG_CASES: dict[str, tuple[Any, tuple[str, ...]]] = {
    "malformed": ('{"schema_version": 1, "config": {', ("not valid JSON",)),
    "not-an-object": ("[1, 2]", ("expected an object with 'schema_version' and 'config' keys",)),
    "unknown-key": (
        {"schema_version": 4, "config": {"dataset": "synthetic", "colour": "red"}},
        ("unknown setting(s) colour", "valid names are the train.py flags"),
    ),
    "wrong-type": (
        {"schema_version": 4, "config": {"dataset": "synthetic", "epochs": "ten"}},
        ("setting 'epochs' must be of type int", "'ten'"),
    ),
    "newer-schema": (
        {"schema_version": 99, "config": {"dataset": "synthetic"}},
        ("schema_version 99, but this joyful-tune reads version 4", "upgrade joyful-tune"),
    ),
    "negative-loss-weight": (
        {"schema_version": 4, "config": {"dataset": "synthetic", "encoder_loss_weight": -1}},
        ("--encoder_loss_weight is -1.0, but must be a finite number >= 0",),
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_config_file_is_refused(
    cli: CliRunner, tmp_path: Path, ray_tmp: Path, case: str
) -> None:
    content, fragments = CONFIG_CASES[case]
    config = tmp_path / "config.json"
    config.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    done = cli(
        TRAIN,
        "--config",
        str(config),
        *_train_args(write_data(tmp_path / "data.pkl"), out)[2:],
        env={"RAY_TMPDIR": str(ray_tmp)},
    )
    refused(done, f"--config {config}", *fragments, ray_tmp=ray_tmp, untouched=(out,))


@pytest.mark.timeout(120)
def test_config_for_another_dataset_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"schema_version": 4, "config": {"dataset": "synthetic"}}))
    out = tmp_path / "out"
    args = _train_args(write_data(tmp_path / "data.pkl"), out)
    args[1] = "iemocap_4"
    done = cli(TRAIN, "--config", str(config), *args)
    refused(
        done,
        "is for data set 'synthetic', but --dataset is 'iemocap_4'",
        "drop one of them",
        untouched=(out,),
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        (
            "--encoder_loss_weight",
            "-0.1",
            "--encoder_loss_weight is -0.1, but must be a finite number >= 0",
        ),
        ("--cl_loss_weight", "nan", "--cl_loss_weight is nan, but must be a finite number"),
        ("--gate_reg_weight", "inf", "--gate_reg_weight is inf, but must be a finite number"),
        ("--cl-loss-weight", "-inf", "--cl_loss_weight is -inf, but must be a finite number"),
    ],
)
def test_bad_loss_weight_flag_is_refused(
    cli: CliRunner, tmp_path: Path, flag: str, value: str, fragment: str
) -> None:
    out = tmp_path / "out"
    done = cli(TRAIN, *_train_args(write_data(tmp_path / "data.pkl"), out), f"{flag}={value}")
    refused(done, fragment, untouched=(out,))


# --- resources: needs a running Ray -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_more_gpus_per_trial_than_the_cluster_has_is_refused(tmp_path: Path) -> None:
    ray_tmp = short_tmpdir()
    try:
        out = tmp_path / "out"
        args = search_args(
            write_data(tmp_path / "data.pkl"),
            write_space(tmp_path / "space.yaml"),
            out,
            "exp",
            "--gpus-per-trial",
            "1000",
        )
        done = run_search(args, search_env(ray_tmp), timeout=240)
    finally:
        stop_ray(ray_tmp)
        remove_tree(ray_tmp)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [
        line for line in done.stderr.splitlines() if line.startswith("tune/search.py: error:")
    ]
    assert (
        len(errors) == 1 and "--gpus-per-trial 1000.0: no node has that many GPUs" in errors[0]
    ), done.stderr
    assert "lower it, or use 0 to train on CPU" in errors[0]
    assert files_under(out / "results") == [] and not (out / "ray" / "exp").exists()


# --- safety -------------------------------------------------------------------------------------------------

SOURCE_ROOTS = ("joyful", "tune", "benchmarks", "scripts")


def _source_lines() -> list[tuple[str, int, str]]:
    files = [p for root in SOURCE_ROOTS for p in (REPO / root).rglob("*.py")] + list(
        REPO.glob("*.py")
    )
    return [
        (str(p.relative_to(REPO)), number, line)
        for p in sorted(files)
        for number, line in enumerate(p.read_text().splitlines(), start=1)
    ]


def test_source_has_no_unsafe_loading_or_shell_calls() -> None:
    # The patterns are split so this file does not match itself if tests/ is ever scanned.
    unpickle = (
        "pickle." + "load(",
        "pickle." + "loads(",
        "pickle." + "Unpickler(",
        "dill.",
        "joblib.load",
    )
    shell = ("shell" + "=True", "os." + "system(", "os." + "popen(")
    builtin_eval = re.compile(r"(?<![\w.])(eval|exec)\(")  # the builtins, not model.eval()
    problems = []
    for path, number, line in _source_lines():
        code = line.split("#", 1)[0]
        if path != "joyful/data/unpickle.py" and any(p in code for p in unpickle):
            problems.append(
                f"{path}:{number}: unpickling outside joyful/data/unpickle.py: {line.strip()}"
            )
        if any(p in code for p in shell) or builtin_eval.search(code):
            problems.append(f"{path}:{number}: shell or eval: {line.strip()}")
        if "torch." + "load(" in code and "weights_only=True" not in code:
            problems.append(
                f"{path}:{number}: torch.load without weights_only=True: {line.strip()}"
            )
        if "yaml." in code and any(
            p in code for p in ("yaml.load(", "unsafe_load", "FullLoader", "yaml.Loader")
        ):
            if "Loader=_Loader" not in code:  # tune/space/_reader.py's _Loader is a SafeLoader
                problems.append(
                    f"{path}:{number}: YAML loaded without a safe loader: {line.strip()}"
                )
    assert not problems, "\n".join(problems)


def test_checkpoint_that_runs_code_on_load_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "coach": _Marker(os.system, f"touch {marker}")}, path)
    with pytest.raises(UserError, match="cannot be loaded safely"):
        load_checkpoint(path)
    assert not marker.exists()


def test_dashboard_binds_to_localhost_unless_asked() -> None:
    import inspect

    from tune.runner.cluster import start_ray
    from tune.search import build_parser

    assert build_parser().parse_args(["--dataset", "synthetic"]).dashboard_host == "127.0.0.1"
    assert inspect.signature(start_ray).parameters["dashboard_host"].default == "127.0.0.1"
