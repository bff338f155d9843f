"""Training crops: shapes, ranges, masks and determinism per seed and worker."""

import numpy as np
import torch
from torch.utils.data import DataLoader

from ocr_restore.data.dataset import FolderCrops, SyntheticCrops, fixed_set
from ocr_restore.data.render import render
from ocr_restore.files import write_image


def _take(dataset, n):
    stream = iter(dataset)
    return [next(stream) for _ in range(n)]


def test_items_have_the_right_shapes_and_ranges():
    for item in _take(SyntheticCrops(crop=(48, 96), seed=1), 12):
        assert item["clean"].shape == item["occluded"].shape == (3, 48, 96)
        assert item["hole"].shape == item["paper_hole"].shape == (1, 48, 96)
        for key, value in item.items():
            assert value.dtype == torch.float32 and 0 <= value.min() and value.max() <= 1, key
        assert set(item["hole"].unique().tolist()) <= {0.0, 1.0}
        # the hole is exactly where the occluded crop differs from the clean one
        changed = (item["clean"] != item["occluded"]).any(0)
        assert torch.equal(changed, item["hole"][0].bool())
        assert item["hole"].mean() < 0.9


def test_crops_show_text_and_occluders():
    items = _take(SyntheticCrops(seed=2), 30)
    assert np.mean([item["hole"].mean() > 0.003 for item in items]) > 0.9
    # text: contrast inside every clean crop
    assert all(item["clean"].std() > 0.03 for item in items)


def test_deterministic_per_seed_and_worker():
    a = fixed_set(6, seed=3)
    b = fixed_set(6, seed=3)
    c = fixed_set(6, seed=4)
    assert all(torch.equal(a[k], b[k]) for k in a) and a["clean"].shape == (6, 3, 64, 128)
    assert not torch.equal(a["clean"], c["clean"])
    # two workers draw two different streams, the same on every run
    loader = lambda: DataLoader(SyntheticCrops(seed=3, kinds=("scene",)), batch_size=2, num_workers=2)
    first = [batch["clean"] for batch, _ in zip(loader(), range(4))]
    again = [batch["clean"] for batch, _ in zip(loader(), range(4))]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not torch.equal(first[0], first[1])


def test_folder_crops(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(3):
        write_image(tmp_path / f"{i}.png", render("docs", rng).image)
    items = _take(FolderCrops(tmp_path, crop=(64, 128), seed=0), 8)
    for item in items:
        assert item["occluded"].shape == (3, 64, 128)
        assert torch.equal((item["clean"] != item["occluded"]).any(0), item["hole"][0].bool())
    assert np.mean([item["hole"].mean() > 0 for item in items]) > 0.7
