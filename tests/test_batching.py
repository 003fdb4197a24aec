"""Batches of whole dialogues (§2): flat node tensors, graph, loader order; and batch-composition independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config
from reference import reference_edges

from joyful.data.batching import DialogueLoader, TensorDialogue, collate
from joyful.data.dialogues import Dialogue
from joyful.model import build_model


def make_dialogues(
    lengths: list[int], dims: dict[str, int] | None = None, seed: int = 0
) -> list[Dialogue]:
    rng = np.random.default_rng(seed)
    dims = dims or {"a": 3, "t": 5}
    return [
        Dialogue(
            f"d{i}",
            rng.integers(2, size=n),
            rng.integers(4, size=n),
            {m: rng.standard_normal((n, d)).astype(np.float32) for m, d in dims.items()},
        )
        for i, n in enumerate(lengths)
    ]


def test_collate_lays_dialogues_back_to_back() -> None:
    dialogues = make_dialogues([3, 1, 4])
    batch = collate([TensorDialogue(d, "ta") for d in dialogues], n_speakers=2, wp=1, wf=2)
    assert batch.num_utterances == 8
    assert batch.lengths.tolist() == [3, 1, 4]
    assert batch.dialogue_index.tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert batch.position.tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    assert batch.labels.tolist() == np.concatenate([d.labels for d in dialogues]).tolist()
    assert batch.speakers.tolist() == np.concatenate([d.speakers for d in dialogues]).tolist()
    assert list(batch.features) == ["t", "a"] and batch.features["a"].shape == (8, 3)
    np.testing.assert_array_equal(batch.features["t"][3:4].numpy(), dialogues[1].features["t"])
    edges = set(
        zip(
            batch.edge_index[0].tolist(),
            batch.edge_index[1].tolist(),
            batch.edge_type.tolist(),
            strict=True,
        )
    )
    assert edges == reference_edges([3, 1, 4], batch.speakers, 2, 1, 2)


def test_only_requested_modalities_are_batched() -> None:
    batch = collate([TensorDialogue(d, "a") for d in make_dialogues([2, 2])], 2, 8, 8)
    assert list(batch.features) == ["a"]


def test_batch_to_moves_everything() -> None:
    batch = collate([TensorDialogue(d, "at") for d in make_dialogues([2, 3])], 2, 8, 8)
    moved = batch.to("cpu")
    assert torch.equal(moved.edge_index, batch.edge_index) and torch.equal(
        moved.features["t"], batch.features["t"]
    )


def test_loader_contiguous_batches_and_length() -> None:
    dialogues = make_dialogues([2, 3, 4, 5, 6, 7, 8])
    loader = DialogueLoader(dialogues, "at", 2, batch_size=3, wp=8, wf=8, shuffle=False)
    assert len(loader) == 3 and loader.num_utterances == 35
    batches = list(loader)
    assert [b.lengths.tolist() for b in batches] == [[2, 3, 4], [5, 6, 7], [8]]
    assert list(loader)[0] is batches[0]  # unshuffled batches are built once


def test_shuffled_loader_is_seeded_and_reshuffles_each_epoch() -> None:
    dialogues = make_dialogues(list(range(2, 12)))

    def epochs(seed: int) -> list[list[int]]:
        loader = DialogueLoader(
            dialogues,
            "a",
            2,
            batch_size=4,
            wp=8,
            wf=8,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        return [[n for b in loader for n in b.lengths.tolist()] for _ in range(3)]

    first = epochs(1)
    assert first == epochs(1)
    assert first != epochs(2)
    assert first[0] != first[1]  # a new order every epoch
    assert all(sorted(order) == list(range(2, 12)) for order in first)  # each dialogue once


@pytest.mark.parametrize("fusion", ["autofusion", "hierarchical"])
@pytest.mark.parametrize("rnn", ["transformer", "lstm", "gru"])
def test_eval_predictions_do_not_depend_on_batch_composition(
    synthetic_path, synthetic_data, fusion, rnn
) -> None:
    """With the key-padding mask (and packed RNNs) a dialogue's outputs do not change with its batch partners."""
    torch.manual_seed(0)
    config = tiny_config(synthetic_path, fusion=fusion, rnn=rnn)
    model = build_model(config, synthetic_data.check_modalities("atv"), synthetic_data.spec).eval()
    dialogues = synthetic_data.splits["train"][:4]
    assert len({len(d) for d in dialogues}) > 1  # padding happens
    items = [TensorDialogue(d, "atv") for d in dialogues]
    with torch.no_grad():
        together = model(collate(items, 2, config.wp, config.wf), contrast=False)
        alone = [model(collate([item], 2, config.wp, config.wf), contrast=False) for item in items]
    torch.testing.assert_close(
        together.log_probs, torch.cat([o.log_probs for o in alone]), rtol=1e-4, atol=1e-5
    )
    # The batch reconstruction loss is the mean over dialogues of their summed utterance losses.
    torch.testing.assert_close(
        together.reconstruction, torch.stack([o.reconstruction for o in alone]).mean()
    )


@pytest.mark.parametrize(
    ("lengths", "batch_size", "expected"),
    [
        ([2, 3, 1], 2, [[2, 3, 1]]),  # a last one-utterance chunk joins the previous one
        ([1, 1, 3, 2], 1, [[1, 1, 3], [2]]),  # leading ones wait for the next chunk
        ([1, 1, 4], 2, [[1, 1], [4]]),  # two one-utterance dialogues are two rows: left alone
    ],
)
def test_a_one_utterance_chunk_joins_its_neighbour_in_training(
    lengths, batch_size, expected
) -> None:
    dialogues = make_dialogues(lengths)
    training = DialogueLoader(dialogues, "a", 2, batch_size=batch_size, wp=8, wf=8, shuffle=True)
    assert [b.lengths.tolist() for b in training.in_order()] == expected
    assert sum(b.num_utterances for b in training.in_order()) == sum(lengths)
    # Evaluation batches are left as they were: a one-row batch is fine in eval mode.
    evaluation = DialogueLoader(dialogues, "a", 2, batch_size=batch_size, wp=8, wf=8, shuffle=False)
    assert [n for b in evaluation for n in b.lengths.tolist()] == lengths
    assert len(list(evaluation)) == len(evaluation)


def test_training_survives_a_one_utterance_dialogue_drawn_last(
    synthetic_path, synthetic_data
) -> None:
    """MELD has one-utterance dialogues; one drawn alone into the last batch used to end the run in BatchNorm."""
    config = tiny_config(synthetic_path)
    model = build_model(config, synthetic_data.check_modalities("atv"), synthetic_data.spec).train()
    first, second = synthetic_data.splits["train"][:2]
    single = Dialogue(
        "single",
        first.speakers[:1],
        first.labels[:1],
        {m: f[:1] for m, f in first.features.items()},
    )
    loader = DialogueLoader(
        [first, second, single], "atv", 2, batch_size=2, wp=config.wp, wf=config.wf, shuffle=True
    )
    batches = list(loader.in_order())
    for batch in batches:
        output = model(batch, contrast=True)
        output.log_probs.sum().backward()
    assert [b.lengths.tolist() for b in batches] == [[len(first), len(second), 1]]
