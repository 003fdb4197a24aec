"""Search-space files: every shipped file validates, every mistake is named, define-by-run drives Optuna."""

from __future__ import annotations

import copy
import hashlib
import pickle
from pathlib import Path

import optuna
import pytest
import yaml

from joyful.config import JoyfulConfig
from joyful.errors import UserError
from tune.space import (
    Budget,
    Parameter,
    SearchSpace,
    default_space_path,
    load_space,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "search_spaces").glob("*.yaml"))
CONDITIONAL = {"gate_reg_weight", "reconstruction_loss"}

VALID = {
    "dataset": "synthetic",
    "metric": "dev_weighted_f1",
    "mode": "max",
    "budget": {
        "num_samples": 4,
        "max_epochs": 8,
        "grace_period": 2,
        "reduction_factor": 2,
        "cpus_per_trial": 1,
        "gpus_per_trial": 0,
        "max_concurrent": 2,
    },
    "fixed": {"modalities": "atv", "learning_rate": 1.0e-4},
    "parameters": {
        "fusion": {"type": "categorical", "choices": ["autofusion", "hierarchical"]},
        "encoder_loss_weight": {"type": "float", "low": 0.01, "high": 0.1, "log": True},
        "gate_reg_weight": {
            "type": "float",
            "low": 1.0e-4,
            "high": 0.1,
            "log": True,
            "when": {"fusion": "hierarchical"},
            "role": "nuisance",
        },
        "reconstruction_loss": {
            "type": "categorical",
            "choices": ["mse", "smooth_l1"],
            "when": {"fusion": "hierarchical"},
        },
    },
    "baseline": {"fusion": "autofusion", "encoder_loss_weight": 0.03},
}


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def write(tmp_path: Path, doc: dict | str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def patched(change) -> dict:
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


def load(tmp_path: Path, doc: dict | str, dataset: str | None = None) -> SearchSpace:
    return load_space(write(tmp_path, doc), dataset)


# --- shipped files --------------------------------------------------------------
def test_every_dataset_has_a_space():
    assert {p.stem for p in SHIPPED} >= {
        "iemocap",
        "iemocap_4",
        "mosei",
        "meld",
        "meld_text",
        "synthetic",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_space_loads_and_validates(path: Path):
    space = load_space(path, dataset=path.stem)
    assert default_space_path(path.stem) == path
    assert path.read_text().startswith("#"), "each file starts with a header comment"
    assert space.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert space.param_names()[:4] == [
        "fusion",
        "encoder_loss_weight",
        "gate_reg_weight",
        "reconstruction_loss",
    ]
    assert space.baseline_point() == {"fusion": "autofusion", "encoder_loss_weight": 0.03}
    config = space.trial_config(JoyfulConfig(dataset=path.stem), space.baseline_point())
    assert config.fusion == "autofusion" and config.modalities == space.fixed.get(
        "modalities", "atv"
    )
    study = optuna.create_study(direction=space.mode + "imize")
    trial = study.ask()
    space.suggest(trial)
    space.trial_config(JoyfulConfig(dataset=path.stem), trial.params)


@pytest.mark.parametrize(
    "path", [p for p in SHIPPED if p.stem != "synthetic"], ids=lambda p: p.name
)
def test_real_data_spaces_tune_the_nuisance_settings(path: Path):
    """Fusions are compared at tuned settings: every real-data space searches the learning rate (log),
    dropout, weight decay, class weighting and feature scaling, and names the user's proposal."""
    space = load_space(path, dataset=path.stem)
    by_name = {p.name: p for p in space.parameters}
    assert {"learning_rate", "drop_rate", "weight_decay", "class_weight", "feature_norm"} <= set(
        by_name
    )
    assert by_name["learning_rate"].log and by_name["learning_rate"].role == "nuisance"
    assert space.tuned_names()[0] != "encoder_loss_weight"  # the baseline fixes it at 0.03
    assert "learning_rate" in space.tuned_names() and "fusion" not in space.tuned_names()
    assert space.proposal == {"fusion": "hierarchical", "reconstruction_loss": "smooth_l1"}


def test_synthetic_budget_is_the_quick_start():
    space = load_space(default_space_path("synthetic"), "synthetic")
    assert space.budget == Budget(
        num_samples=10,
        max_epochs=6,
        grace_period=2,
        reduction_factor=2,
        cpus_per_trial=1.0,
        gpus_per_trial=0.0,
        max_concurrent=2,
    )
    assert space.budget.checkpoint_every == 1  # small, fast trials: every epoch
    assert space.fixed == {
        "modalities": "atv",
        "seqcontext_nlayer": 1,
        "learning_rate": 3e-4,
        "fusion_pool_dim": 256,
        "fusion_hidden": 512,
        "fusion_latent": 256,
    }
    assert (space.resampling.kind, space.resampling.folds) == ("cv", 3)


@pytest.mark.parametrize("dataset", ["iemocap", "iemocap_4", "mosei", "meld"])
def test_full_size_spaces_checkpoint_every_5_epochs(dataset):
    """Weights + Adam state of the default model are about 0.5 GiB; with a checkpoint every 5th epoch the
    Ray/Optuna overhead of a 50-epoch CPU trial came to 1.4% (idle machine) and 3.3% (loaded) in
    docs/PERFORMANCE.md; a checkpoint every epoch costs five times as many saves."""
    assert load_space(default_space_path(dataset), dataset).budget.checkpoint_every == 5


# --- valid variations -----------------------------------------------------------
def test_valid_document_parses(tmp_path):
    space = load(tmp_path, VALID, dataset="synthetic")
    assert (space.dataset, space.metric, space.mode) == ("synthetic", "dev_weighted_f1", "max")
    gate = space.parameters[2]
    assert gate == Parameter(
        "gate_reg_weight",
        "float",
        1e-4,
        0.1,
        True,
        None,
        None,
        {"fusion": ("hierarchical",)},
        "nuisance",
    )
    assert space.parameters[0].choices == ("autofusion", "hierarchical")
    assert space.path == str(tmp_path.joinpath("space.yaml").resolve())


def test_defaults_and_yaml_conveniences(tmp_path):
    text = (
        "dataset: synthetic\nmetric: dev_loss\n"
        "parameters:\n  gate_reg_weight: {type: float, low: 1e-4, high: 1, log: true}\n"
        "  seqcontext_nlayer: {type: int, low: 1, high: 4}\n"
    )
    space = load(tmp_path, text)
    assert space.mode == "min"  # the metric's direction
    assert space.budget == Budget()
    assert space.fixed == {} and space.baseline == {}
    gate = space.parameters[0]
    assert (gate.low, gate.high) == (1e-4, 1.0) and isinstance(
        gate.high, float
    )  # `1e-4` is a float, ints accepted


def test_parameter_normalises_scalar_condition():
    p = Parameter("gate_reg_weight", "float", 1e-4, 0.1, when={"fusion": "hierarchical"})
    assert p.when == {"fusion": ("hierarchical",)}
    assert p.is_active({"fusion": "hierarchical"})
    assert not p.is_active({"fusion": "autofusion"})
    assert not p.is_active({})


# --- invalid files ----------------------------------------------------------------
def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(doc):
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _delete(*keys):
    def change(doc):
        target = doc
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


P = "parameters"
INVALID = [
    (
        "unknown top-level key",
        _set("paramters", {}),
        "unknown key 'paramters'; did you mean 'parameters'",
    ),
    ("missing dataset", _delete("dataset"), "dataset: missing"),
    (
        "dataset with a path",
        _set("dataset", "../meld"),
        "dataset: --dataset '../meld' must be a plain name",
    ),
    ("unknown budget key", _set("budget", "num_sample", 3), "budget: unknown key 'num_sample'"),
    ("budget not a mapping", _set("budget", [1, 2]), "budget: must be a mapping"),
    (
        "setting name typo",
        _set(P, "encoder_los_weight", {"type": "float", "low": 0.1, "high": 1}),
        "'encoder_los_weight' is not a JoyfulConfig setting; did you mean encoder_loss_weight",
    ),
    (
        "fixed key unknown",
        _set("fixed", "modality", "at"),
        "fixed.modality: 'modality' is not a JoyfulConfig setting",
    ),
    (
        "fixed value wrong type",
        _set("fixed", "modalities", 3),
        "fixed.modalities: setting 'modalities' must be of type str",
    ),
    ("fixed bool for int", _set("fixed", "batch_size", True), "'batch_size' must be of type int"),
    (
        "fixed value breaks rule",
        _set("fixed", "modalities", "xyz"),
        "fixed.modalities: --modalities is 'xyz'",
    ),
    ("fixed epochs", _set("fixed", "epochs", 3), "set it with budget.max_epochs"),
    (
        "searched dataset",
        _set(P, "dataset", {"type": "categorical", "choices": ["a", "b"]}),
        "top-level 'dataset' key",
    ),
    (
        "fixed and searched",
        _set("fixed", "fusion", "hierarchical"),
        "parameters.fusion: 'fusion' is both fixed and searched",
    ),
    (
        "unknown parameter key",
        _set(P, "encoder_loss_weight", "lo", 0.01),
        "parameters.encoder_loss_weight: unknown key 'lo'",
    ),
    (
        "unknown type",
        _set(P, "encoder_loss_weight", "type", "uniform"),
        "'uniform' is not one of float, int, categorical",
    ),
    (
        "missing type",
        _delete(P, "encoder_loss_weight", "type"),
        "encoder_loss_weight.type: missing; use one of float, int, categorical",
    ),
    (
        "missing high",
        _delete(P, "encoder_loss_weight", "high"),
        "a float parameter needs both low and high",
    ),
    (
        "low > high",
        _set(P, "encoder_loss_weight", "low", 0.2),
        "parameters.encoder_loss_weight: low 0.2 > high 0.1",
    ),
    (
        "low == high",
        _set(P, "encoder_loss_weight", "low", 0.1),
        "low == high == 0.1; to keep it constant, move it to fixed",
    ),
    (
        "log with low 0",
        _set(P, "encoder_loss_weight", "low", 0),
        "log: true needs low > 0, got low 0.0",
    ),
    (
        "log not bool",
        _set(P, "encoder_loss_weight", "log", "yes please"),
        "encoder_loss_weight.log: 'yes please' must be",
    ),
    (
        "bool bound",
        _set(P, "encoder_loss_weight", "low", True),
        "encoder_loss_weight.low: True must be a number",
    ),
    (
        "string bound",
        _set(P, "encoder_loss_weight", "high", "big"),
        "encoder_loss_weight.high: 'big' must be a number",
    ),
    (
        "negative loss weight",
        _set(P, "encoder_loss_weight", {"type": "float", "low": -0.1, "high": 0.1}),
        "encoder_loss_weight.low: -0.1 is not a valid value (--encoder_loss_weight is -0.1, but must be a finite number >= 0)",
    ),
    (
        "rate out of range",
        _set(P, "drop_rate", {"type": "float", "low": 0.1, "high": 1.5}),
        "--drop_rate is 1.5",
    ),
    (
        "float for int setting",
        _set(P, "batch_size", {"type": "float", "low": 8, "high": 64}),
        "is an integer; use type: int",
    ),
    (
        "int with float bound",
        _set(P, "batch_size", {"type": "int", "low": 8.5, "high": 64}),
        "batch_size.low: 8.5 must be an integer",
    ),
    (
        "number for string setting",
        _set(P, "optimizer", {"type": "float", "low": 0, "high": 1}),
        "use type: categorical",
    ),
    (
        "choices on float",
        _set(P, "encoder_loss_weight", "choices", [0.1]),
        "choices applies only to type categorical",
    ),
    (
        "low on categorical",
        _set(P, "fusion", "low", 1),
        "low does not apply to a categorical parameter",
    ),
    (
        "empty choices",
        _set(P, "fusion", "choices", []),
        "fusion.choices: a categorical parameter needs a non-empty list",
    ),
    (
        "missing choices",
        _delete(P, "fusion", "choices"),
        "fusion.choices: a categorical parameter needs a non-empty list",
    ),
    (
        "duplicate choices",
        _set(P, "fusion", "choices", ["autofusion", "autofusion"]),
        "duplicate choice 'autofusion'",
    ),
    (
        "choice not in registry",
        _set(P, "fusion", "choices", ["autofusion", "gated"]),
        "fusion.choices: 'gated' is not a valid value (--fusion is 'gated', but must be one of: autofusion, hierarchical)",
    ),
    (
        "choice of wrong type",
        _set(P, "batch_size", {"type": "categorical", "choices": [16, "big"]}),
        "batch_size.choices: setting 'batch_size' must be of type int, got 'big'",
    ),
    ("nested choice", _set(P, "fusion", "choices", [["autofusion"]]), "must be a plain value"),
    (
        "bad role",
        _set(P, "fusion", "role", "fixed"),
        "fusion.role: 'fixed' is not one of scientific, nuisance",
    ),
    (
        "step with log",
        _set(P, "encoder_loss_weight", "step", 0.01),
        "step and log: true cannot be combined",
    ),
    (
        "step not dividing",
        _set(P, "seqcontext_nlayer", {"type": "int", "low": 1, "high": 4, "step": 2}),
        "high - low (3) must be a multiple of step 2",
    ),
    (
        "negative step",
        _set(P, "drop_rate", {"type": "float", "low": 0.1, "high": 0.5, "step": -0.1}),
        "must be a positive number",
    ),
    ("no parameters", _set(P, {}), "parameters: missing or empty"),
    (
        "parameter not a mapping",
        _set(P, "fusion", "autofusion"),
        "parameters.fusion: must be a mapping",
    ),
    (
        "when unknown parameter",
        _set(P, "gate_reg_weight", "when", {"fusio": "hierarchical"}),
        "gate_reg_weight.when.fusio: 'fusio' is not a searched parameter",
    ),
    (
        "when impossible value",
        _set(P, "gate_reg_weight", "when", {"fusion": "gated"}),
        "gate_reg_weight.when.fusion: fusion cannot take 'gated' (choices are autofusion, hierarchical)",
    ),
    (
        "when on fixed",
        lambda d: (
            d["fixed"].update(scheduler="none"),
            d[P]["gate_reg_weight"].update(when={"scheduler": "none"}),
        ),
        "'scheduler' is fixed, not searched",
    ),
    (
        "when on float",
        _set(P, "gate_reg_weight", "when", {"encoder_loss_weight": 0.05}),
        "conditions on a float parameter",
    ),
    (
        "when on itself",
        _set(P, "gate_reg_weight", "when", {"gate_reg_weight": 0.01}),
        "cannot depend on itself",
    ),
    (
        "when out of int range",
        lambda d: (
            d[P].update(seqcontext_nlayer={"type": "int", "low": 1, "high": 4}),
            d[P]["fusion"].update(when={"seqcontext_nlayer": 7}),
        ),
        "range is [1, 4]",
    ),
    (
        "when cycle",
        lambda d: (
            d[P]["fusion"].update(when={"reconstruction_loss": "mse"}),
            d["baseline"].clear(),
        ),
        "'when' conditions form a cycle: fusion -> reconstruction_loss -> fusion",
    ),
    (
        "unknown metric",
        _set("metric", "test_weighted_f1"),
        "metric: 'test_weighted_f1' is not one of dev_weighted_f1",
    ),
    ("bad mode", _set("mode", "maximize"), "mode: 'maximize' must be max or min"),
    (
        "loss maximised",
        _set("metric", "dev_loss"),
        "dev_loss must be optimised with mode min, not max",
    ),
    (
        "f1 minimised",
        _set("mode", "min"),
        "dev_weighted_f1 must be optimised with mode max, not min",
    ),
    (
        "num_samples 0",
        _set("budget", "num_samples", 0),
        "budget.num_samples is 0, but must be >= 1",
    ),
    (
        "num_samples float",
        _set("budget", "num_samples", 2.5),
        "budget.num_samples is 2.5, but must be an integer",
    ),
    (
        "num_samples bool",
        _set("budget", "num_samples", True),
        "budget.num_samples is True, but must be an integer",
    ),
    ("max_epochs 0", _set("budget", "max_epochs", 0), "budget.max_epochs is 0, but must be >= 1"),
    ("grace 0", _set("budget", "grace_period", 0), "budget.grace_period is 0, but must be >= 1"),
    (
        "grace > max",
        _set("budget", "grace_period", 9),
        "budget.grace_period is 9, but must be <= budget.max_epochs (8)",
    ),
    (
        "reduction factor 1",
        _set("budget", "reduction_factor", 1),
        "budget.reduction_factor is 1, but must be >= 2",
    ),
    ("cpus 0", _set("budget", "cpus_per_trial", 0), "budget.cpus_per_trial is 0, but must be > 0"),
    (
        "cpus string",
        _set("budget", "cpus_per_trial", "two"),
        "budget.cpus_per_trial is 'two', but must be a number",
    ),
    (
        "gpus negative",
        _set("budget", "gpus_per_trial", -0.5),
        "budget.gpus_per_trial is -0.5, but must be >= 0",
    ),
    (
        "max_concurrent negative",
        _set("budget", "max_concurrent", -1),
        "budget.max_concurrent is -1, but must be >= 0",
    ),
    (
        "checkpoint_every 0",
        _set("budget", "checkpoint_every", 0),
        "budget.checkpoint_every is 0, but must be >= 1",
    ),
    (
        "checkpoint_every float",
        _set("budget", "checkpoint_every", 1.5),
        "budget.checkpoint_every is 1.5, but must be an integer",
    ),
    (
        "baseline not searched",
        _set("baseline", "learning_rate", 1e-3),
        "baseline.learning_rate: not a searched parameter",
    ),
    (
        "baseline out of range",
        _set("baseline", "encoder_loss_weight", 0.5),
        "baseline.encoder_loss_weight: 0.5 is outside the space",
    ),
    (
        "baseline bad choice",
        _set("baseline", "fusion", "gated"),
        "baseline.fusion: 'gated' is outside the space",
    ),
    (
        "baseline inactive",
        _set("baseline", "gate_reg_weight", 0.01),
        "baseline.gate_reg_weight: inactive in the baseline, as it is searched only when fusion in (hierarchical)",
    ),
]


@pytest.mark.parametrize(
    ("change", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_space_is_named(tmp_path, change, fragment):
    with pytest.raises(UserError) as info:
        load(tmp_path, patched(change))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "space.yaml")) or message.startswith("space.yaml")
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "dataset: synthetic\nparameters: {fusion: {type: categorical, choices: [a, b]\n",
            "line 3: invalid YAML",
        ),
        ("dataset: synthetic\ndataset: meld\n", "line 2: invalid YAML (duplicate key 'dataset')"),
        ("- dataset\n- synthetic\n", "the top level must be a mapping"),
        ("", "the top level must be a mapping"),
    ],
    ids=["syntax", "duplicate key", "list", "empty"],
)
def test_unparsable_file_is_named(tmp_path, text, fragment):
    with pytest.raises(UserError, match="space.yaml") as info:
        load(tmp_path, text)
    assert fragment in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(
        UserError, match=r"nope\.yaml: file not found \(shipped spaces: .*synthetic"
    ):
        load_space(tmp_path / "nope.yaml")


def test_unreadable_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UserError, match="cannot read it"):
        load_space(path)


def test_dataset_mismatch(tmp_path):
    path = write(tmp_path, VALID, name="meld.yaml")
    with pytest.raises(UserError, match=r"meld\.yaml is for 'synthetic', not 'iemocap_4'"):
        load_space(path, dataset="iemocap_4")


# --- define-by-run -----------------------------------------------------------------
def _space_of(*parameters: Parameter) -> SearchSpace:
    return SearchSpace("synthetic", tuple(parameters), {}, {}, Budget())


def _ask_many(space: SearchSpace, n: int = 30, seed: int = 0) -> list[dict]:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    seen = []
    for i in range(n):
        trial = study.ask()
        assert space.suggest(trial) == trial.params
        seen.append(dict(trial.params))
        study.tell(trial, (i * 7919 % 13) / 13)
    return seen


def test_define_by_run_suggests_conditional_parameters(tmp_path):
    space = load(tmp_path, VALID)
    seen = _ask_many(space)
    branches = {params["fusion"] for params in seen}
    assert branches == {"autofusion", "hierarchical"}
    for params in seen:
        assert 0.01 <= params["encoder_loss_weight"] <= 0.1
        if params["fusion"] == "autofusion":
            assert set(params) == {"fusion", "encoder_loss_weight"}
        else:
            assert set(params) == {"fusion", "encoder_loss_weight"} | CONDITIONAL
            assert 1e-4 <= params["gate_reg_weight"] <= 0.1
            assert params["reconstruction_loss"] in ("mse", "smooth_l1")


def test_define_by_run_orders_parents_first_and_handles_int_steps():
    child = Parameter(
        "gate_reg_weight", "float", 1e-3, 0.1, log=True, when={"fusion": "hierarchical"}
    )
    parent = Parameter("fusion", "categorical", choices=("hierarchical",))
    layers = Parameter("seqcontext_nlayer", "int", 1, 5, step=2)
    rate = Parameter("drop_rate", "float", 0.1, 0.5, step=0.1)
    space = _space_of(child, layers, parent, rate)
    assert [p.name for p in space.active_parameters({"fusion": "hierarchical"})] == [
        "fusion",
        "gate_reg_weight",
        "seqcontext_nlayer",
        "drop_rate",
    ]
    for params in _ask_many(space, n=12):
        assert set(params) == {"fusion", "gate_reg_weight", "seqcontext_nlayer", "drop_rate"}
        assert params["seqcontext_nlayer"] in (1, 3, 5)
        assert round(params["drop_rate"] * 10) == pytest.approx(params["drop_rate"] * 10)


def test_define_by_run_rejects_a_cycle():
    a = Parameter(
        "fusion", "categorical", choices=("autofusion",), when={"reconstruction_loss": "mse"}
    )
    b = Parameter(
        "reconstruction_loss", "categorical", choices=("mse",), when={"fusion": "autofusion"}
    )
    with pytest.raises(UserError, match="cycle"):
        _space_of(a, b).suggest(optuna.create_study().ask())


def test_define_by_run_suggests_each_parameter_from_its_own_range():
    """The Optuna distribution of every suggested value is the parameter's range, step and log."""
    layers = Parameter("seqcontext_nlayer", "int", 1, 5, step=2)
    rate = Parameter("drop_rate", "float", 0.1, 0.5, step=0.1)
    weight = Parameter("gate_reg_weight", "float", 1e-4, 0.1, log=True)
    fusion = Parameter("fusion", "categorical", choices=("autofusion", "hierarchical"))
    study = optuna.create_study()
    trial = study.ask()
    _space_of(layers, rate, weight, fusion).suggest(trial)
    assert trial.distributions == {
        "seqcontext_nlayer": optuna.distributions.IntDistribution(1, 5, step=2),
        "drop_rate": optuna.distributions.FloatDistribution(0.1, 0.5, step=0.1),
        "gate_reg_weight": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True),
        "fusion": optuna.distributions.CategoricalDistribution(("autofusion", "hierarchical")),
    }


def test_active_parameters_need_active_parents(tmp_path):
    """A grandchild is inactive when its parent is: the parent's value in a config does not count then."""
    layers = {"type": "int", "low": 1, "high": 3, "when": {"reconstruction_loss": "mse"}}
    space = load(tmp_path, patched(_set(P, "seqcontext_nlayer", layers)))
    values = {
        "fusion": "autofusion",
        "encoder_loss_weight": 0.03,
        "reconstruction_loss": "mse",
        "seqcontext_nlayer": 2,
    }
    assert [p.name for p in space.active_parameters(values)] == ["fusion", "encoder_loss_weight"]
    assert space.active_point(values) == {"fusion": "autofusion", "encoder_loss_weight": 0.03}
    hierarchical = {**values, "fusion": "hierarchical", "gate_reg_weight": 0.01}
    assert space.active_point(hierarchical) == hierarchical
    assert space.point_from(hierarchical) == hierarchical
    assert space.point_from({**hierarchical, "seqcontext_nlayer": 7}) is None  # outside the space
    del hierarchical["gate_reg_weight"]
    assert space.point_from(hierarchical) is None  # an active parameter is missing
    for params in _ask_many(space, n=20):
        assert set(params) == {p.name for p in space.active_parameters(params)}


PARAMETER_MISTAKES = [
    (dict(type="float", low=0.2, high=0.1), "parameters.x: low 0.2 > high 0.1"),
    (
        dict(type="int", low=2, high=2),
        "parameters.x: low == high == 2; to keep it constant, move it to fixed",
    ),
    (
        dict(type="float", low=0, high=1, log=True),
        "parameters.x: log: true needs low > 0, got low 0.0",
    ),
    (
        dict(type="float", low=0.1, high=1, log="yes"),
        "parameters.x.log: 'yes' must be true or false",
    ),
    (
        dict(type="int", low=1, high=4, step=2),
        "parameters.x: high - low (3) must be a multiple of step 2",
    ),
    (
        dict(type="float", low=0.1, high=1, step=0.1, log=True),
        "parameters.x: step and log: true cannot be",
    ),
    (dict(type="int", low=1.5, high=4), "parameters.x.low: 1.5 must be an integer"),
    (dict(type="float", low=0.1, high=float("nan")), "parameters.x.high: nan must be a number"),
    (dict(type="float", high=1.0), "parameters.x: a float parameter needs both low and high"),
    (
        dict(type="categorical", choices=()),
        "parameters.x.choices: a categorical parameter needs a non-empty list",
    ),
    (dict(type="categorical", choices=("a", "a")), "parameters.x.choices: duplicate choice 'a'"),
    (
        dict(type="categorical", choices=("a",), low=1),
        "parameters.x: low does not apply to a categorical parameter",
    ),
    (
        dict(type="float", low=0.1, high=1, choices=(0.5,)),
        "parameters.x: choices applies only to type categorical",
    ),
    (dict(type="normal"), "parameters.x.type: 'normal' is not one of float, int, categorical"),
    (
        dict(type="categorical", choices=("a",), role="fixed"),
        "parameters.x.role: 'fixed' is not one of scientific",
    ),
    (
        dict(type="categorical", choices=("a",), when={"x": "a"}),
        "parameters.x.when.x: a parameter cannot depend on",
    ),
    (
        dict(type="categorical", choices=("a",), when={"y": []}),
        "parameters.x.when.y: needs a value or a non-empty",
    ),
]


@pytest.mark.parametrize(
    ("fields", "message"), PARAMETER_MISTAKES, ids=[m for _, m in PARAMETER_MISTAKES]
)
def test_parameter_checks_itself(fields, message):
    with pytest.raises(UserError) as info:
        Parameter("x", **fields)
    assert str(info.value).startswith(message)


def test_parameter_stores_float_bounds_and_knows_its_values():
    p = Parameter("drop_rate", "float", 0, 1, step=0.25)
    assert (p.low, p.high, p.step) == (0.0, 1.0, 0.25) and isinstance(p.low, float)
    assert p.value_problem(0.5) is None
    assert p.value_problem(0.3) == "not on the grid low + k * 0.25"
    assert p.value_problem(2) == "range is [0.0, 1.0]"
    assert p.value_problem("big") == "must be a number"


def test_a_space_pickles_and_samples_the_same(tmp_path):
    """Tune pickles the searcher with the experiment, and the searcher holds the space."""
    space = load(tmp_path, VALID)
    copy = pickle.loads(pickle.dumps(space))
    assert copy == space and _ask_many(copy, n=15) == _ask_many(space, n=15)


def test_from_unit_spreads_a_sample_over_the_range_and_to_unit_inverts_it():
    """How a Sobol sample becomes values (the learning-curve table): log ranges evenly in log, grids kept."""
    rate = Parameter("learning_rate", "float", 1e-4, 1e-2, log=True)
    assert rate.from_unit(0.0) == pytest.approx(1e-4) and rate.from_unit(0.5) == pytest.approx(1e-3)
    assert rate.to_unit(1e-3) == pytest.approx(0.5)
    layers = Parameter("seqcontext_nlayer", "int", 1, 5, step=2)
    assert [layers.from_unit(u) for u in (0.0, 0.3, 0.6, 0.99)] == [1, 3, 3, 5]
    fusion = Parameter("fusion", "categorical", choices=("autofusion", "hierarchical"))
    assert [fusion.from_unit(u) for u in (0.0, 0.49, 0.5, 1.0)] == [
        "autofusion",
        "autofusion",
        "hierarchical",
        "hierarchical",
    ]
    assert fusion.to_unit("hierarchical") == 0.75
    drop = Parameter("drop_rate", "float", 0.1, 0.5, step=0.1)
    assert (
        drop.from_unit(0.33) == pytest.approx(0.2)
        and drop.value_problem(drop.from_unit(0.77)) is None
    )


# --- baseline, trial config, edges -------------------------------------------------------
def test_baseline_point_keeps_only_active_parameters(tmp_path):
    doc = patched(
        _set(
            "baseline",
            {"fusion": "hierarchical", "encoder_loss_weight": 0.03, "gate_reg_weight": 0.01},
        )
    )
    assert load(tmp_path, doc).baseline_point() == {
        "fusion": "hierarchical",
        "encoder_loss_weight": 0.03,
        "gate_reg_weight": 0.01,
    }
    space = load(tmp_path, VALID)
    space.baseline = {**space.baseline, "gate_reg_weight": 0.01}  # inactive under autofusion
    assert space.baseline_point() == {"fusion": "autofusion", "encoder_loss_weight": 0.03}


def test_trial_config_applies_fixed_then_sampled(tmp_path):
    space = load(
        tmp_path,
        patched(_set("fixed", {"modalities": "at", "learning_rate": 1e-4, "seqcontext_nlayer": 1})),
    )
    base = JoyfulConfig(dataset="synthetic", modalities="t", learning_rate=1e-2, epochs=3)
    sampled = {
        "fusion": "hierarchical",
        "encoder_loss_weight": 0.05,
        "gate_reg_weight": 0.002,
        "reconstruction_loss": "smooth_l1",
    }
    config = space.trial_config(base, sampled)
    assert (config.modalities, config.learning_rate, config.seqcontext_nlayer) == (
        "at",
        1e-4,
        1,
    )  # fixed wins over base
    assert (config.fusion, config.encoder_loss_weight, config.gate_reg_weight) == (
        "hierarchical",
        0.05,
        0.002,
    )
    assert config.reconstruction_loss == "smooth_l1"
    assert (config.dataset, config.epochs) == ("synthetic", 3)  # untouched by the space
    assert base.fusion == "autofusion"  # the base is not mutated
    with pytest.raises(UserError, match="--encoder_loss_weight is -1.0"):
        space.trial_config(base, {"encoder_loss_weight": -1.0})
    with pytest.raises(UserError, match="unknown setting"):
        space.trial_config(base, {"fusion_kind": "x"})


def test_at_edge():
    log = Parameter("gate_reg_weight", "float", 1e-4, 1e-1, log=True)
    assert log.at_edge(1.2e-4) and log.at_edge(0.09) and log.at_edge(1e-4)
    assert not log.at_edge(3e-3) and not log.at_edge(
        1.5e-4
    )  # 1.5e-4 is 6% of the log range above low
    linear = Parameter("drop_rate", "float", 0.0, 0.5)
    assert linear.at_edge(0.02) and linear.at_edge(0.49)
    assert not linear.at_edge(0.03) and not linear.at_edge(0.25)
    assert linear.at_edge(0.03, rel=0.1)
    assert Parameter("seqcontext_nlayer", "int", 1, 11).at_edge(1)
    assert not Parameter("fusion", "categorical", choices=("autofusion", "hierarchical")).at_edge(
        "hierarchical"
    )


def test_the_scientific_values_are_the_arms(tmp_path):
    """A scientific categorical (fusion, no role: scientific by default) splits the search into arms;
    a conditional one (reconstruction_loss) or a nuisance one does not."""
    space = load(tmp_path, VALID)
    assert space.strata() == [{"fusion": "autofusion"}, {"fusion": "hierarchical"}]
    doc = copy.deepcopy(VALID)
    doc["parameters"]["fusion"]["role"] = "nuisance"
    assert load(tmp_path, doc).strata() == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_no_shipped_space_fixes_bf16(path: Path):
    """bf16 is several times slower than fp32 on CPUs without native bfloat16: the hardware decides
    (`--precision auto`, the default), never a committed file."""
    space = load_space(path, dataset=path.stem)
    assert space.fixed.get("precision", "auto") == "auto"
    assert "precision" not in space.param_names()
