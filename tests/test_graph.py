"""Dialogue graph edges (vectorised) against brute force, plus hand-built cases (§3.3)."""

from __future__ import annotations

import pytest
import torch
from reference import reference_edges

from joyful.graph import build_dialogue_edges, num_relations, relation_types

WINDOWS = [(0, 0), (1, 0), (0, 1), (2, 3), (8, 8), (-1, 2), (3, -1), (-1, -1), (50, 50)]


def edge_set(
    lengths: list[int], speakers: list[int], n_speakers: int, wp: int, wf: int
) -> set[tuple[int, int, int]]:
    edge_index, edge_type = build_dialogue_edges(
        torch.tensor(lengths), torch.tensor(speakers), n_speakers, wp, wf
    )
    assert edge_index.shape[0] == 2 and edge_index.shape[1] == edge_type.shape[0]
    assert edge_index.dtype == torch.long and edge_type.dtype == torch.long
    triples = list(
        zip(edge_index[0].tolist(), edge_index[1].tolist(), edge_type.tolist(), strict=True)
    )
    assert len(triples) == len(set(triples)), "duplicate edges"
    return set(triples)


@pytest.mark.parametrize("n_speakers", [2, 9])
@pytest.mark.parametrize("wp,wf", WINDOWS)
@pytest.mark.parametrize("seed", range(4))
def test_random_batches_equal_brute_force(seed: int, wp: int, wf: int, n_speakers: int) -> None:
    generator = torch.Generator().manual_seed(seed * 100 + n_speakers)
    lengths = torch.randint(
        1, 13, (int(torch.randint(1, 6, (1,), generator=generator)),), generator=generator
    ).tolist()
    speakers = torch.randint(n_speakers, (sum(lengths),), generator=generator).tolist()
    assert edge_set(lengths, speakers, n_speakers, wp, wf) == reference_edges(
        lengths, speakers, n_speakers, wp, wf
    )


def test_hand_built_two_dialogues() -> None:
    """Dialogues of 3 and 2 nodes, wp = wf = 1, speakers [0, 1, 0 | 1, 1], S = 2."""
    got = edge_set([3, 2], [0, 1, 0, 1, 1], 2, 1, 1)
    expected = {
        (0, 0, 1),
        (0, 1, 2),
        (1, 0, 5),
        (1, 1, 7),
        (1, 2, 4),
        (2, 1, 3),
        (2, 2, 1),  # first dialogue
        (3, 3, 7),
        (3, 4, 6),
        (4, 3, 7),
        (4, 4, 7),  # second dialogue
    }
    assert got == expected


def test_single_utterance_has_only_its_self_loop() -> None:
    assert edge_set([1], [1], 2, 8, 8) == {(0, 0, 2 * (1 * 2 + 1) + 1)}


def test_dialogues_never_connect() -> None:
    lengths = [4, 7, 1, 5]
    edge_index, _ = build_dialogue_edges(
        torch.tensor(lengths), torch.zeros(17, dtype=torch.long), 1, -1, -1
    )
    dialogue = torch.repeat_interleave(torch.arange(4), torch.tensor(lengths))
    assert torch.equal(dialogue[edge_index[0]], dialogue[edge_index[1]])
    assert edge_index.shape[1] == sum(n * n for n in lengths)  # unbounded windows: complete graphs


def test_relation_types_cover_two_s_squared() -> None:
    assert num_relations(1) == 2 and num_relations(2) == 8 and num_relations(9) == 162
    source = torch.tensor([0, 1, 1, 0])
    target = torch.tensor([1, 0, 1, 0])
    speakers = torch.tensor([8, 3])
    types = relation_types(source, target, speakers, 9)
    assert types.tolist() == [
        2 * (8 * 9 + 3),
        2 * (3 * 9 + 8) + 1,
        2 * (3 * 9 + 3) + 1,
        2 * (8 * 9 + 8) + 1,
    ]
    assert int(types.max()) < num_relations(9)
