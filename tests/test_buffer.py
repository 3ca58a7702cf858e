"""Reservoir sampling statistics and the buffer's storage."""
import numpy as np
import torch

from utils.core.buffer import Buffer, BufferSample, balanced_subset, new_entries, rank_within_class, reservoir_slots


def fill(capacity, stream, batch):
    buffer = Buffer(capacity, "cpu")
    items = torch.arange(stream)
    for chunk in items.split(batch):
        buffer.add(chunk[:, None, None, None].to(torch.uint8), chunk)
    return buffer


def test_reservoir_keeps_every_item_with_probability_m_over_n():
    torch.manual_seed(0)
    capacity, stream, trials = 10, 100, 2000
    kept = np.zeros(stream)
    for _ in range(trials):
        buffer = fill(capacity, stream, batch=7)
        assert buffer.size == capacity and len(set(buffer.labels.tolist())) == capacity
        kept[buffer.labels.numpy()] += 1
    p = capacity / stream
    freq = kept / trials
    sigma = np.sqrt(p * (1 - p) / trials)
    assert np.all(np.abs(freq - p) < 4.5 * sigma)
    # Group means detect small biases (e.g. r drawn in [0, k) instead of [0, k], which keeps the
    # first items with probability 9/99 instead of 10/100).
    for group in (freq[:capacity], freq[capacity:50], freq[50:]):
        assert abs(group.mean() - p) < 4 * sigma / np.sqrt(len(group))
    chi2 = np.sum((kept - trials * p) ** 2 / (trials * p * (1 - p)))
    assert chi2 < stream + 4 * np.sqrt(2 * stream)


def test_a_batch_is_inserted_as_one_by_one_insertion_would():
    """Item k goes where Algorithm R sends it (slot k while filling, else r = floor(u·(k+1)) if r <
    capacity), and of several items sent to one slot only the last keeps it. The uniforms u are the
    ones the function draws (one per item, in order, from torch's generator)."""
    torch.manual_seed(1)
    uniforms = torch.rand(50).tolist()
    torch.manual_seed(1)
    slots = reservoir_slots(3, 50, 5, "cpu").tolist()
    expected = [-1] * 50
    holder = {}
    for item, u in enumerate(uniforms):
        position = 3 + item
        target = position if position < 5 else int(u * (position + 1))
        if target < 5:
            holder[target] = item  # a later item overwrites an earlier one
    for slot, item in holder.items():
        expected[item] = slot
    assert slots == expected and sorted(s for s in slots if s >= 0) == sorted(holder)


def test_storage_dtypes_and_named_samples():
    buffer = Buffer(8, "cpu")
    images = torch.randint(0, 255, (5, 3, 4, 4), dtype=torch.uint8)
    buffer.add(images, torch.arange(5), logits=torch.randn(5, 10, dtype=torch.bfloat16))
    assert buffer.images.dtype == torch.uint8 and buffer.logits.dtype == torch.float32
    sample = buffer.sample(3)
    assert isinstance(sample, BufferSample)
    assert sample.images.shape == (3, 3, 4, 4) and len(set(sample.indices.tolist())) == 3
    assert torch.equal(sample.images, images[sample.labels])
    assert len(buffer.sample(100).labels) == 5
    assert buffer.entry_bytes() == {"images": 48, "labels": 8, "logits": 40}
    assert buffer.nbytes() == 8 * (48 + 8 + 40)


def test_rows_with_non_finite_logits_are_never_stored():
    buffer = Buffer(4, "cpu")
    logits = torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [float("inf"), 0.0], [2.0, 3.0]])
    buffer.add(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.arange(4), logits)
    assert buffer.size == 2 and buffer.n_seen == 2
    assert buffer.labels[:2].tolist() == [0, 3] and torch.isfinite(buffer.logits[:2]).all()


def test_once_full_a_row_with_non_finite_logits_leaves_its_slot_as_it_was():
    torch.manual_seed(0)
    buffer = Buffer(4, "cpu")
    buffer.add(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.arange(4), torch.zeros(4, 2))
    before = {name: getattr(buffer, name).clone() for name in Buffer.FIELDS}
    for _ in range(20):
        buffer.add(torch.ones(3, 1, 2, 2, dtype=torch.uint8), torch.full((3,), 9), torch.full((3, 2), float("nan")))
    assert buffer.n_seen == 64 and all(torch.equal(getattr(buffer, name), before[name]) for name in Buffer.FIELDS)
    buffer.add(torch.ones(30, 1, 2, 2, dtype=torch.uint8), torch.full((30,), 9), torch.ones(30, 2))
    assert (buffer.labels == 9).any()


def test_append_fills_the_next_free_slots():
    buffer = Buffer(5, "cpu")
    buffer.append(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([3, 4]))
    buffer.append(torch.ones(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([7, 8]))
    assert buffer.size == buffer.n_seen == 4 and buffer.labels[:4].tolist() == [3, 4, 7, 8]


def test_balanced_subset_keeps_the_first_per_class():
    labels = torch.tensor([0, 1, 0, 0, 2, 1, 2, 2, 2])
    assert balanced_subset(labels, per_class=2).tolist() == [0, 1, 2, 4, 5, 6]


def test_new_entries_fill_the_free_slots_class_balanced():
    torch.manual_seed(0)
    labels = torch.tensor([4] * 10 + [5] * 10)
    chosen = new_entries(labels, free=7)
    counts = torch.bincount(labels[chosen], minlength=6)[4:].tolist()
    assert len(chosen) == 7 and sorted(counts) == [3, 4] and len(set(chosen.tolist())) == 7


def test_rank_within_class():
    assert rank_within_class(torch.tensor([2, 0, 2, 2, 0, 1])).tolist() == [0, 0, 1, 2, 1, 0]
