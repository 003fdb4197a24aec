"""The result store on a real file system: publish rules, history, locking, atomicity, trial tables."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import filelock
import pytest
from tune_helpers import SHA_B, best_document, confirmation_entry

from joyful.config import load_config_file
from joyful.errors import UserError
from tune.records import BestConfig
from tune.records.store import BEST_CONFIG_SCHEMA_VERSION, TRIAL_COLUMNS, ResultStore

validate_best_document = BestConfig.from_dict


def make_document(value: float, **changes) -> dict:
    return best_document(value, **changes)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- publish rules ----------------------------------------------------------------
def test_first_publish_writes_a_file_train_py_reads(tmp_path):
    store = ResultStore(tmp_path)
    outcome = store.publish_best("synthetic", make_document(0.61))
    assert outcome.written and outcome.reason == "no earlier result" and outcome.previous is None
    assert (
        outcome.path
        == tmp_path / "best_configs" / "synthetic.json"
        == store.best_config_path("synthetic")
    )
    config, document = load_config_file(outcome.path)
    assert config.learning_rate == 1e-4 and document["metric"]["value"] == 0.61
    assert store.read_best("synthetic") == BestConfig.from_dict(make_document(0.61))
    [record] = store.history("synthetic")
    assert (
        record["outcome"] == "published"
        and record["metric"]["value"] == 0.61
        and "recorded_at" in record
    )
    assert leftovers(tmp_path / "best_configs") == []


def test_better_result_replaces_and_history_keeps_both(tmp_path):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.61))
    outcome = store.publish_best("synthetic", make_document(0.63, learning_rate=3e-4))
    assert (
        outcome.written
        and "better than earlier" in outcome.reason
        and "0.63 > 0.61" in outcome.reason
    )
    assert outcome.previous.metric.value == 0.61
    assert store.read_best("synthetic").metric.value == 0.63
    assert [(r["outcome"], r["metric"]["value"]) for r in store.history("synthetic")] == [
        ("published", 0.61),
        ("published", 0.63),
    ]


@pytest.mark.parametrize("value", [0.60, 0.63])  # worse, and equal: only strictly better replaces
def test_worse_or_equal_result_is_kept_out_and_recorded(tmp_path, value):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.63))
    before = store.best_config_path("synthetic").read_bytes()
    outcome = store.publish_best("synthetic", make_document(value, learning_rate=5e-4))
    assert not outcome.written and outcome.reason.startswith(
        "kept earlier result of search 's1': 0.63 >= "
    )
    assert "same data and metric" in outcome.reason
    assert store.best_config_path("synthetic").read_bytes() == before
    last = store.history("synthetic")[-1]
    assert last["outcome"] == "kept-earlier" and last["config"]["learning_rate"] == 5e-4


def test_an_unconfirmed_result_replacing_a_confirmed_one_says_so(tmp_path):
    store = ResultStore(tmp_path)
    from tune.stats.confirmation import ConfirmationResult

    confirmed = make_document(0.61)
    confirmed["confirmation"] = ConfirmationResult(
        seeds=[1024, 1025],
        entries=[confirmation_entry("baseline", {1024: 0.6, 1025: 0.62})],
        winner_label="baseline",
    ).to_dict()
    store.publish_best("synthetic", confirmed)
    outcome = store.publish_best("synthetic", make_document(0.62))
    assert outcome.written and "0.62 > 0.61" in outcome.reason
    assert (
        "the earlier result was confirmed over seeds and this one is a single unconfirmed trial"
        in outcome.reason
    )
    assert "confirmed over seeds" not in store.publish_best("synthetic", make_document(0.63)).reason


def test_overwrite_replaces_a_better_result(tmp_path):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.63))
    outcome = store.publish_best("synthetic", make_document(0.40), overwrite=True)
    assert outcome.written and "overwrite requested" in outcome.reason
    assert store.read_best("synthetic").metric.value == 0.40


@pytest.mark.parametrize(
    "change, words",
    [
        ({"sha256": SHA_B}, "other data"),
        ({"metric": "dev_loss", "mode": "min"}, "another metric"),
        ({"mode": "min"}, "another metric"),
    ],
)
def test_result_for_other_data_or_metric_needs_overwrite(tmp_path, change, words):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.63))
    before = store.best_config_path("synthetic").read_bytes()
    refused = store.publish_best(
        "synthetic", make_document(0.10 if "mode" in change else 0.99, **change)
    )
    assert not refused.written and words in refused.reason and "--overwrite" in refused.reason
    assert store.best_config_path("synthetic").read_bytes() == before
    replaced = store.publish_best("synthetic", make_document(0.50, **change), overwrite=True)
    assert (
        replaced.written
        and words in replaced.reason
        and "earlier kept in history" in replaced.reason
    )
    assert store.read_best("synthetic").metric.value == 0.50
    assert [r["outcome"] for r in store.history("synthetic")] == [
        "published",
        "kept-earlier",
        "published",
    ]
    assert store.history("synthetic")[0]["metric"]["value"] == 0.63


def test_mode_min_keeps_the_lower_value(tmp_path):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.50, metric="dev_loss", mode="min"))
    assert not store.publish_best(
        "synthetic", make_document(0.70, metric="dev_loss", mode="min")
    ).written
    outcome = store.publish_best("synthetic", make_document(0.30, metric="dev_loss", mode="min"))
    assert outcome.written and "0.3 < 0.5" in outcome.reason
    assert store.read_best("synthetic").metric.value == 0.30


@pytest.mark.parametrize(
    "content", ['{"schema_version": 1, "config": {', '{"schema_version": 1, "config": {}}', "[]"]
)
def test_corrupt_earlier_file_is_moved_aside_not_destroyed(tmp_path, content):
    store = ResultStore(tmp_path)
    path = store.best_config_path("synthetic")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(UserError, match="synthetic.json"):
        store.read_best("synthetic")
    outcome = store.publish_best("synthetic", make_document(0.20))
    assert outcome.written and outcome.previous is None and "moved it to" in outcome.reason
    [aside] = path.parent.glob("synthetic.corrupt-*.json")
    assert aside.read_text() == content and str(aside) in outcome.reason
    assert store.read_best("synthetic").metric.value == 0.20


def test_file_from_a_newer_version_is_not_replaced_silently(tmp_path):
    store = ResultStore(tmp_path)
    path = store.best_config_path("synthetic")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"schema_version": BEST_CONFIG_SCHEMA_VERSION + 1, "config": {}}))
    with pytest.raises(UserError, match="newer joyful-tune"):
        store.read_best("synthetic")
    refused = store.publish_best("synthetic", make_document(0.9))
    assert not refused.written and "--overwrite" in refused.reason
    assert store.publish_best("synthetic", make_document(0.9), overwrite=True).written


def test_read_best_and_history_of_an_unknown_data_set_are_empty(tmp_path):
    store = ResultStore(tmp_path)
    assert store.read_best("mosei") is None and store.history("mosei") == []


def test_history_skips_a_line_cut_short_and_appends_after_it(tmp_path):
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", make_document(0.5))
    with open(store.history_path("synthetic"), "a") as out:
        out.write('{"outcome": "publ')  # a crash during an append
    with pytest.warns(UserWarning, match=r"skipped line\(s\) 2: not valid JSON"):
        assert len(store.history("synthetic")) == 1
    store.publish_best("synthetic", make_document(0.6))
    lines = store.history_path("synthetic").read_text().splitlines()
    assert lines[1] == '{"outcome": "publ' and json.loads(lines[2])["metric"]["value"] == 0.6
    with pytest.warns(UserWarning, match=r"skipped line\(s\) 2:"):
        assert [r["metric"]["value"] for r in store.history("synthetic")] == [0.5, 0.6]


# --- validation -------------------------------------------------------------------
def _drop(key):
    def change(document):
        section, _, inner = key.rpartition(".")
        del (document[section] if section else document)[inner]

    return change


def _set(key, value):
    def change(document):
        section, _, inner = key.rpartition(".")
        (document[section] if section else document)[inner] = value

    return change


@pytest.mark.parametrize(
    "change, key",
    [
        (_drop("schema_version"), "schema_version"),
        (_set("schema_version", 0), "schema_version"),
        (_set("kind", "config"), "kind"),
        (_set("dataset", "../x"), "dataset"),
        (_drop("data.sha256"), "data.sha256"),
        (_set("data.sha256", ""), "data.sha256"),
        (_drop("config"), "config"),
        (_set("config", {"no_such_flag": 1}), "no_such_flag"),
        (_set("modalities", "at"), "config.modalities"),
        (_set("metric.mode", "maximum"), "metric.mode"),
        (_set("metric.value", float("nan")), "metric.value"),
        (_set("metric.value", "0.6"), "metric.value"),
        (_set("metric.best_epoch", True), "metric.best_epoch"),
        (_drop("study.space_sha256"), "study.space_sha256"),
        (_drop("versions.ray"), "versions.ray"),
        (_set("test", {"accuracy": 0.5}), "test.weighted_f1"),
        (_set("confirmation", []), "confirmation"),
        (_set("rerun_command", " "), "rerun_command"),
        (_set("written_at", "yesterday"), "written_at"),
    ],
)
def test_invalid_documents_are_refused_naming_the_key(tmp_path, change, key):
    document = make_document(0.5)
    change(document)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        validate_best_document(document)
    with pytest.raises(ValueError):
        ResultStore(tmp_path).publish_best("synthetic", document)
    assert not (tmp_path / "best_configs" / "synthetic.json").exists()


def test_optional_sections_may_be_null_and_extra_keys_are_kept(tmp_path):
    document = {
        **make_document(0.5),
        "test": None,
        "checkpoint": "runs/x.pt",
        "notes": "free text",
    }
    validate_best_document(document)
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", document)
    assert store.read_best("synthetic") == BestConfig.from_dict(document)
    assert store.read_best("synthetic").to_dict()["notes"] == "free text"


def test_the_readme_example_is_a_valid_document(tmp_path):
    readme = (Path(__file__).parents[1] / "results" / "README.md").read_text()
    example = json.loads(readme.split("```json\n", 1)[1].split("```", 1)[0])
    validate_best_document(example)
    store = ResultStore(tmp_path)
    store.publish_best("iemocap_4", example)
    config, _ = load_config_file(store.best_config_path("iemocap_4"))
    assert config.learning_rate == 0.00021


def test_data_set_names_must_be_plain(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises(UserError, match="path separators"):
        store.best_config_path("../evil")
    with pytest.raises(ValueError, match="'synthetic', not 'mosei'"):
        store.publish_best("mosei", make_document(0.5))


# --- writability and locking ------------------------------------------------------------
def test_check_writable_creates_the_folders(tmp_path):
    ResultStore(tmp_path / "new" / "results").check_writable()
    assert sorted(p.name for p in (tmp_path / "new" / "results").iterdir()) == [
        "best_configs",
        "reports",
        "studies",
        "trials",
    ]
    assert all(not any(p.iterdir()) for p in (tmp_path / "new" / "results").iterdir())


def test_check_writable_refuses_a_path_under_a_file(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match=r"^--results-dir .*a_file/results is not writable: "):
        ResultStore(tmp_path / "a_file" / "results").check_writable()


@pytest.mark.parametrize("folder", ["/proc/joyful-results", "/sys/joyful-results"])
def test_check_writable_refuses_a_system_folder(folder):
    if not Path(folder).parent.is_dir():
        pytest.skip(f"{Path(folder).parent} does not exist here")
    with pytest.raises(UserError, match="is not writable"):
        ResultStore(folder).check_writable()


def test_a_held_lock_times_out_with_a_clear_error(tmp_path):
    store = ResultStore(tmp_path, lock_timeout_s=0.2)
    store.publish_best("synthetic", make_document(0.5))
    lock = filelock.FileLock(str(store.best_config_path("synthetic")) + ".lock")
    with lock, pytest.raises(UserError, match="another process is publishing"):
        store.publish_best("synthetic", make_document(0.9))
    assert store.read_best("synthetic").metric.value == 0.5


# --- trials table -----------------------------------------------------------------------
def test_trials_csv_has_fixed_columns_then_sorted_params(tmp_path):
    rows = [
        {
            "trial_id": "t1",
            "status": "TERMINATED",
            "epochs_run": 10,
            "best_dev_weighted_f1": 0.61,
            "best_epoch": 8,
            "stop_reason": "max epochs",
            "error": None,
            "learning_rate": 1e-4,
            "drop_rate": 0.3,
        },
        {
            "trial_id": "t2",
            "status": "ERROR",
            "epochs_run": 1,
            "error": "CUDA out of memory,\nat step 3",
            "wp": 4,
        },
    ]
    path = ResultStore(tmp_path).write_trials_csv("synthetic", rows)
    assert path == tmp_path / "trials" / "synthetic.csv"
    with open(path, newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [*TRIAL_COLUMNS, "drop_rate", "learning_rate", "wp"]
    assert table[1] == [
        "t1",
        "TERMINATED",
        "10",
        "",
        "0.61",
        "8",
        "max epochs",
        "",
        "0.3",
        "0.0001",
        "",
    ]
    assert table[2] == [
        "t2",
        "ERROR",
        "1",
        "",
        "",
        "",
        "",
        "CUDA out of memory,\nat step 3",
        "",
        "",
        "4",
    ]
    assert leftovers(path.parent) == []
    with pytest.raises(ValueError, match="trial_id"):
        ResultStore(tmp_path).write_trials_csv("synthetic", [{"status": "ERROR"}])


# --- several processes ----------------------------------------------------------------
def _publish_many(
    results_dir: str, values: list[float], overwrite: bool, ready: str, go: str
) -> int:
    """Run in a spawned process: wait for the start signal, then publish each value."""
    Path(ready).touch()
    deadline = time.monotonic() + 60
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no start signal")
        time.sleep(0.002)
    store = ResultStore(results_dir)
    return sum(
        store.publish_best("synthetic", make_document(v), overwrite=overwrite).written
        for v in values
    )


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(
        max_workers=2, mp_context=multiprocessing.get_context("spawn")
    ) as executor:
        yield executor


def _start_together(pool, tmp_path, jobs):
    """Submit (values, overwrite) jobs to separate workers and release them at the same moment."""
    go = tmp_path / "go"
    futures, readies = [], []
    for i, (values, overwrite) in enumerate(jobs):
        readies.append(tmp_path / f"ready{i}")
        futures.append(
            pool.submit(
                _publish_many,
                str(tmp_path / "results"),
                values,
                overwrite,
                str(readies[-1]),
                str(go),
            )
        )
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in readies):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.005)
    go.touch()
    return futures


def test_concurrent_publishers_keep_the_best_and_every_record(pool, tmp_path):
    rising = [round(0.400 + 0.01 * i, 3) for i in range(20)]
    falling = [round(0.405 + 0.01 * i, 3) for i in reversed(range(20))]
    values = [rising, falling]
    futures = _start_together(pool, tmp_path, [(v, False) for v in values])
    assert sum(f.result(timeout=60) for f in futures) >= 1
    store = ResultStore(tmp_path / "results")
    best = json.loads(store.best_config_path("synthetic").read_text())
    assert best["metric"]["value"] == max(max(v) for v in values)
    lines = store.history_path("synthetic").read_text().splitlines()
    assert len(lines) == 40
    records = [json.loads(line) for line in lines]
    assert sorted(r["metric"]["value"] for r in records) == sorted(v for vs in values for v in vs)
    published = [r["metric"]["value"] for r in records if r["outcome"] == "published"]
    assert published == sorted(published)  # under the lock, each publish beats the one before
    assert leftovers(store.best_config_path("synthetic").parent) == []


def test_readers_never_see_a_partial_file_while_a_writer_hammers(pool, tmp_path):
    values = [0.5 + 0.001 * i for i in range(60)]
    [future] = _start_together(pool, tmp_path, [(values, True)])
    path = ResultStore(tmp_path / "results").best_config_path("synthetic")
    reads = 0
    while not future.done():
        if path.exists():
            validate_best_document(json.loads(path.read_text()))
            reads += 1
    assert future.result() == len(values)
    assert reads > 0 and json.loads(path.read_text())["metric"]["value"] == values[-1]
    assert leftovers(path.parent) == []
    assert not any(name.startswith(".") for name in os.listdir(path.parent))
