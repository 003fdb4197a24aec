"""Batches of whole dialogues: flat per-utterance tensors plus the dialogue graph.

The fusion module works per utterance, so features stay flat (N, d) until the
model scatters the fused vectors into a padded (B, maxL, D) tensor for the
sequence model. Node order is dialogue by dialogue, utterance by utterance.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from joyful.data.dialogues import Dialogue
from joyful.data.scaling import FeatureScaler
from joyful.graph import build_dialogue_edges


@dataclass
class Batch:
    features: dict[str, Tensor]  # modality letter -> (N, d_m) float32
    lengths: Tensor  # (B,) long, utterances per dialogue
    speakers: Tensor  # (N,) long
    labels: Tensor  # (N,) long
    dialogue_index: Tensor  # (N,) long, dialogue of each node
    position: Tensor  # (N,) long, index of each node inside its dialogue
    edge_index: Tensor  # (2, E) long
    edge_type: Tensor  # (E,) long

    @property
    def num_utterances(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                moved[f.name] = {k: v.to(device, non_blocking=True) for k, v in value.items()}
            else:
                moved[f.name] = value.to(device, non_blocking=True)
        return Batch(**moved)


class TensorDialogue:
    """A dialogue converted to tensors once, so batching is only concatenation."""

    __slots__ = ("features", "speakers", "labels", "length")

    def __init__(
        self, dialogue: Dialogue, modalities: str, scaler: FeatureScaler | None = None
    ) -> None:
        # torch.tensor copies: arrays shared through Ray's object store are read-only.
        scale = scaler.transform if scaler is not None else (lambda letter, matrix: matrix)
        self.features = {m: torch.tensor(scale(m, dialogue.features[m])) for m in modalities}
        self.speakers = torch.tensor(dialogue.speakers)
        self.labels = torch.tensor(dialogue.labels)
        self.length = len(dialogue)


def collate(dialogues: list[TensorDialogue], n_speakers: int, wp: int, wf: int) -> Batch:
    lengths = torch.tensor([d.length for d in dialogues], dtype=torch.long)
    speakers = torch.cat([d.speakers for d in dialogues])
    dialogue_index = torch.repeat_interleave(torch.arange(len(dialogues)), lengths)
    position = torch.cat([torch.arange(d.length) for d in dialogues])
    edge_index, edge_type = build_dialogue_edges(lengths, speakers, n_speakers, wp, wf)
    return Batch(
        features={m: torch.cat([d.features[m] for d in dialogues]) for m in dialogues[0].features},
        lengths=lengths,
        speakers=speakers,
        labels=torch.cat([d.labels for d in dialogues]),
        dialogue_index=dialogue_index,
        position=position,
        edge_index=edge_index,
        edge_type=edge_type,
    )


class DialogueLoader:
    """Contiguous batches of `batch_size` dialogues, optionally reshuffled each epoch.

    Features are scaled once, here, with `scaler` (fitted on the train split by the Coach).

    Unshuffled loaders (dev/test) build their batches once and keep them on the
    device, since nothing about them can change between epochs.
    """

    def __init__(
        self,
        dialogues: list[Dialogue],
        modalities: str,
        n_speakers: int,
        *,
        batch_size: int,
        wp: int,
        wf: int,
        shuffle: bool,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
        scaler: FeatureScaler | None = None,
    ) -> None:
        self.items = [TensorDialogue(d, modalities, scaler) for d in dialogues]
        self.n_speakers, self.batch_size, self.wp, self.wf = n_speakers, batch_size, wp, wf
        self.shuffle, self.device = shuffle, device
        self.generator = generator
        self._cached: list[Batch] | None = None

    def __len__(self) -> int:
        """Batches an epoch (a training epoch whose order leaves a one-utterance chunk has one
        fewer; see `_chunks`)."""
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    @property
    def num_utterances(self) -> int:
        return sum(d.length for d in self.items)

    def __iter__(self) -> Iterator[Batch]:
        if not self.shuffle:
            if self._cached is None:
                self._cached = [
                    b.to(self.device) for b in self._batches(list(range(len(self.items))))
                ]
            return iter(self._cached)
        order = torch.randperm(len(self.items), generator=self.generator).tolist()
        return (b.to(self.device) for b in self._batches(order))

    def in_order(self) -> Iterator[Batch]:
        """The batches in stored order, without touching the shuffle generator (for passes that must
        not change what training draws next)."""
        return (b.to(self.device) for b in self._batches(list(range(len(self.items)))))

    def _batches(self, order: list[int]) -> Iterator[Batch]:
        for chunk in self._chunks(order):
            yield collate(chunk, self.n_speakers, self.wp, self.wf)

    def _chunks(self, order: list[int]) -> list[list[TensorDialogue]]:
        """`batch_size` dialogues a chunk; in a training loader, a chunk of a single utterance joins
        its neighbour.

        BatchNorm in training mode cannot normalise one row, and MELD has one-utterance dialogues:
        one drawn last (or batch size 1) would end the run. Joining it to the previous chunk (the
        next for the first) keeps every utterance in the epoch. Only training batches change, and
        only where training would otherwise fail; evaluation (unshuffled loaders, model in eval
        mode) batches as before.
        """
        chunks = [
            [self.items[i] for i in order[start : start + self.batch_size]]
            for start in range(0, len(order), self.batch_size)
        ]
        if not self.shuffle:
            return chunks
        joined: list[list[TensorDialogue]] = []
        pending: list[TensorDialogue] = []  # a leading one-utterance chunk waiting for the next one
        for chunk in chunks:
            if sum(d.length for d in chunk) == 1:
                if joined:
                    joined[-1].extend(chunk)
                else:
                    pending.extend(chunk)
                continue
            joined.append(pending + chunk)
            pending = []
        if pending:  # nothing but one-utterance chunks: the data holds a single utterance
            joined.append(pending)
        return joined
