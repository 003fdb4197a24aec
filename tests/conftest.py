"""Shared fixtures: tiny synthetic data files, a tiny config, and pickle builders for legacy layouts."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData, load_dialogue_data
from joyful.data.synthetic import generate
from joyful.datasets import REGISTRY
from joyful.Sample import Sample

# The tests run tiny tensors: a second intra-op thread only adds synchronisation, and on a
# shared 2-core machine it made some tests 15x slower. Results do not depend on it.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
TINY_DIMS = {"a": 8, "t": 16, "v": 12}
# Small widths everywhere, so that a whole training run takes a fraction of a second. fp32, not the
# default `auto`: the tests' numbers must not depend on whether the machine computes bf16 natively.
TINY_MODEL = dict(
    fusion_pool_dim=16,
    fusion_hidden=32,
    fusion_latent=16,
    hidden_size=16,
    seqcontext_nlayer=1,
    gnn_nheads=2,
    batch_size=4,
    learning_rate=1e-3,
    epochs=2,
    precision="fp32",
)
# Timing and memory fields differ between identical runs; everything else in a history record must not.
TIMING_KEYS = ("train_seconds", "train_utterances_per_s", "resident_mb")


def write_pickle(path: Path, obj: Any, protocol: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def pickle_with_class_path(obj: Any, module: str, protocol: int = 4) -> bytes:
    """Pickle `obj`, recording every Sample in it under `<module>.Sample` (e.g. cogmen.Sample).

    A copy of the Sample class with that module path is registered in sys.modules
    only while dumping, so the bytes name the foreign module exactly as a file
    written by COGMEN would.
    """
    fake = types.ModuleType(module)
    foreign = type("Sample", (), {"__module__": module, "__init__": Sample.__init__})
    fake.Sample = foreign

    def convert(value: Any) -> Any:
        if isinstance(value, Sample):
            record = foreign.__new__(foreign)
            record.__dict__.update(value.__dict__)
            return record
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    # pickle imports the module path to check the class, so its parent packages must exist too.
    names = [module.rsplit(".", depth)[0] for depth in range(module.count("."), 0, -1)] + [module]
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:
        sys.modules[name] = (
            fake if name == module else sys.modules.get(name) or types.ModuleType(name)
        )
    try:
        return pickle.dumps(convert(obj), protocol=protocol)
    finally:
        for name, previous in saved.items():
            if previous is None:
                del sys.modules[name]
            else:
                sys.modules[name] = previous


def make_processed(
    n_classes: int,
    speaker_style: str,
    dims: dict[str, int],
    counts: dict[str, int] | None = None,
    seed: int = 0,
    length: tuple[int, int] = (4, 12),
    n_speakers: int = 2,
) -> dict[str, list[Sample]]:
    """A processed-layout dict of random Sample records.

    speaker_style: "MF" (IEMOCAP 'M'/'F'), "M" (MOSEI: one speaker) or "onehot" (MELD: one-hot of length 9).
    Labels carry a weak class signal in every modality so a few epochs can learn something.
    """
    rng = np.random.default_rng(seed)
    counts = counts or {"train": 8, "dev": 3, "test": 3}
    prototypes = {
        m: rng.standard_normal((n_classes, d)).astype(np.float32) for m, d in dims.items()
    }
    data = {}
    for split, count in counts.items():
        records = []
        for index in range(count):
            n = int(rng.integers(length[0], length[1] + 1))
            labels = rng.integers(n_classes, size=n)
            feats = {
                m: (p[labels] + rng.standard_normal((n, p.shape[1]))).astype(np.float32)
                for m, p in prototypes.items()
            }
            if speaker_style == "MF":
                speaker = [str(s) for s in rng.choice(["M", "F"], size=n)]
            elif speaker_style == "M":
                speaker = ["M"] * n
            else:
                speaker = np.eye(9, dtype=np.float32)[rng.integers(n_speakers, size=n)].tolist()
            records.append(
                Sample(
                    vid=f"{split}_{index}",
                    speaker=speaker,
                    label=labels.tolist(),
                    text=list(feats["t"]) if "t" in feats else [np.zeros(3, np.float32)] * n,
                    audio=list(feats["a"]) if "a" in feats else None,
                    visual=list(feats["v"]) if "v" in feats else None,
                    sentence=[f"u{i}" for i in range(n)],
                    sbert_sentence_embeddings=feats.get("t"),
                )
            )
        data[split] = records
    return data


def tiny_config(data_path: Path | str, **changes: Any) -> JoyfulConfig:
    """A validated config with tiny widths for the synthetic IEMOCAP-4-shaped data."""
    values = {"dataset": "synthetic", "data": str(data_path), **TINY_MODEL, **changes}
    return JoyfulConfig(**values).validate()


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in history]


def random_features(
    n: int, dims: dict[str, int], seed: int = 0, dtype: torch.dtype = torch.float32
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, d, generator=generator, dtype=dtype) for m, d in dims.items()}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def synthetic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny seeded synthetic data (IEMOCAP-4 shape, 11/2/3 dialogues of ~16 utterances)."""
    path = tmp_path_factory.mktemp("synthetic") / "data_synthetic.pkl"
    return write_pickle(path, generate(seed=0, scale=0.1, dims=TINY_DIMS))


@pytest.fixture(scope="session")
def synthetic_data(synthetic_path: Path) -> DialogueData:
    """The tiny synthetic data, loaded (shared: tests must not modify it)."""
    return load_dialogue_data(synthetic_path, REGISTRY["synthetic"])


@pytest.fixture
def config(synthetic_path: Path) -> JoyfulConfig:
    return tiny_config(synthetic_path)
