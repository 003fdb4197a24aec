"""A seeded synthetic ERC data set in JOYFUL's processed layout (IEMOCAP-4 shape by default).

How labels arise (so that context, speakers and every modality matter):
* each speaker carries an emotion that persists between their turns and is
  sometimes taken over from the other speaker (context and speaker effects);
* each modality shows a noisy class signal (independent noise per modality, so
  fusing a, t and v beats any single one);
* some utterances are "ambiguous": their features show a random other class,
  and only the dialogue context can recover the label.

    joyful-synth --out data/synthetic/data_synthetic.pkl            # IEMOCAP-4 size
    joyful-synth --out /tmp/tiny.pkl --scale 0.1 --dims a=8,t=16,v=12 # tiny test data
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass

import numpy as np

from joyful.cli_parser import Parser
from joyful.errors import UserError
from joyful.io import atomic_write
from joyful.Sample import Sample

DEFAULT_DIMS = {"a": 100, "t": 768, "v": 512}
# IEMOCAP-4 after the original 10% dev rule: 108 train / 12 dev / 31 test dialogues.
DEFAULT_SPLITS = {"train": 108, "dev": 12, "test": 31}


@dataclass(frozen=True)
class SyntheticSpec:
    n_classes: int = 4
    n_speakers: int = 2
    mean_length: int = 50
    persistence: float = 0.75  # chance a speaker keeps their previous emotion
    contagion: float = 0.15  # chance a speaker takes over the other speaker's emotion
    ambiguous_rate: float = 0.3  # share of utterances whose features show a random class
    signal: dict[str, float] | None = (
        None  # per-modality signal strength, in noise standard deviations
    )
    speaker_offset: float = (
        0.5  # shift toward another class's prototype that depends on the speaker
    )
    latent_dim: int = (
        32  # dimensions of each modality's latent space (fewer if the modality is narrower)
    )
    feature_noise: float = 0.1  # isotropic noise added in the full width

    def strengths(self) -> dict[str, float]:
        return self.signal or {"a": 1.0, "t": 1.2, "v": 1.1}


def generate(
    seed: int = 0,
    scale: float = 1.0,
    dims: dict[str, int] | None = None,
    spec: SyntheticSpec = SyntheticSpec(),
) -> dict[str, list[Sample]]:
    """Build the {"train", "dev", "test"} dict of Sample records."""
    if scale <= 0:
        raise UserError(f"--scale is {scale}, but must be > 0")
    dims = dims or DEFAULT_DIMS
    rng = np.random.default_rng(seed)
    # Each modality lives in a low-dimensional latent space (like real embeddings, whose variance
    # sits in few directions) mapped into its full width by a random orthonormal embedding.
    # Class prototypes are unit-norm latent directions; the latent noise has unit variance, so a
    # strength s puts class means s noise standard deviations from the origin, whatever the width.
    prototypes = {
        m: _unit_rows(rng.standard_normal((spec.n_classes, min(d, spec.latent_dim))))
        for m, d in dims.items()
    }
    embeddings = {m: _orthonormal_rows(rng, min(d, spec.latent_dim), d) for m, d in dims.items()}
    mean_length = max(4, round(spec.mean_length * min(1.0, scale**0.5)))
    result = {}
    counter = 0
    for split, count in DEFAULT_SPLITS.items():
        dialogues = []
        for _ in range(max(2, round(count * scale))):
            length = int(np.clip(rng.normal(mean_length, mean_length * 0.3), 4, 3 * mean_length))
            dialogues.append(
                _dialogue(f"syn_{split}_{counter:04d}", length, rng, prototypes, embeddings, spec)
            )
            counter += 1
        result[split] = dialogues
    return result


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _orthonormal_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """A (rows, width) matrix with orthonormal rows (rows <= width)."""
    q, _ = np.linalg.qr(rng.standard_normal((width, rows)))
    return q.T


def _dialogue(
    vid: str,
    length: int,
    rng: np.random.Generator,
    prototypes: dict[str, np.ndarray],
    embeddings: dict[str, np.ndarray],
    spec: SyntheticSpec,
) -> Sample:
    speakers = np.zeros(length, dtype=np.int64)
    for i in range(1, length):
        speakers[i] = speakers[i - 1] if rng.random() < 0.3 else 1 - speakers[i - 1]
    mood = rng.integers(spec.n_classes, size=spec.n_speakers)  # each speaker's current emotion
    labels = np.zeros(length, dtype=np.int64)
    for i, speaker in enumerate(speakers):
        draw = rng.random()
        if draw < spec.persistence:
            pass
        elif draw < spec.persistence + spec.contagion:
            mood[speaker] = mood[1 - speaker]
        else:
            mood[speaker] = rng.integers(spec.n_classes)
        labels[i] = mood[speaker]
    shown = labels.copy()
    ambiguous = rng.random(length) < spec.ambiguous_rate
    shown[ambiguous] = rng.integers(spec.n_classes, size=int(ambiguous.sum()))
    features = {}
    for m, table in prototypes.items():
        noise = rng.standard_normal((length, table.shape[1]))
        # A speaker-specific offset that the model must see past (speaker effect).
        offset = spec.speaker_offset * table[(speakers + 1) % spec.n_classes]
        latent = spec.strengths()[m] * table[shown] + noise + offset
        width = embeddings[m].shape[1]
        floor = spec.feature_noise * rng.standard_normal(
            (length, width)
        )  # small noise in every direction
        features[m] = (latent @ embeddings[m] + floor).astype(np.float32)
    gender = np.array(["M", "F"])[speakers].tolist()
    return Sample(
        vid=vid,
        speaker=gender,
        label=labels.tolist(),
        text=list(features["t"]) if "t" in features else [np.zeros(1, np.float32)] * length,
        audio=list(features["a"]) if "a" in features else None,
        visual=list(features["v"]) if "v" in features else None,
        sentence=[f"utterance {i}" for i in range(length)],
        sbert_sentence_embeddings=features.get("t"),
    )


def parse_dims(text: str) -> dict[str, int]:
    dims = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in DEFAULT_DIMS or not value.isdigit() or int(value) < 1:
            raise UserError(
                f"--dims {text!r}: expected e.g. a=100,t=768,v=512 (positive widths for a, t, v)"
            )
        dims[key] = int(value)
    return {m: dims.get(m, DEFAULT_DIMS[m]) for m in DEFAULT_DIMS}


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="joyful-synth", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", default="data/synthetic/data_synthetic.pkl", help="output pickle path"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="scales dialogue count (and length, as sqrt)"
    )
    parser.add_argument("--dims", default="a=100,t=768,v=512", help="modality widths")
    args = parser.parse_args(argv)
    try:
        data = generate(args.seed, args.scale, parse_dims(args.dims))
        atomic_write(args.out, lambda out: pickle.dump(data, out, protocol=4), binary=True)
    except UserError as exc:
        print(f"joyful-synth: error: {exc}", file=sys.stderr)
        return 2
    sizes = {k: (len(v), sum(len(s.label) for s in v)) for k, v in data.items()}
    print(
        f"wrote {args.out}: "
        + ", ".join(f"{k} {d} dialogues / {u} utterances" for k, (d, u) in sizes.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
