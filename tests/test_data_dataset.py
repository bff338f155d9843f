"""Training crops: shapes, ranges, masks and determinism per seed and worker."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ocr_restore.data.dataset import FolderCrops, SyntheticCrops, fit_crop, fixed_set
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


def test_tight_crops_keep_the_exact_hole():
    for item in _take(SyntheticCrops(crop=(96, 160), seed=4, tight_share=1.0, scale_jitter=0.7), 12):
        assert item["occluded"].shape == (3, 96, 160) and item["hole"].shape == (1, 96, 160)
        assert torch.equal((item["clean"] != item["occluded"]).any(0), item["hole"][0].bool())


@pytest.mark.parametrize("size", [(20, 50), (200, 300), (20, 300)])
def test_fit_crop_pads_by_edge_replication_or_cuts_one_window_of_all_tensors(size):
    height, width = size
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    columns = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    item = {"rows": rows[None], "columns": torch.stack([columns, columns])}
    fitted = fit_crop(item, (96, 160), np.random.default_rng(0))
    assert fitted["rows"].shape == (1, 96, 160) and fitted["columns"].shape == (2, 96, 160)
    r, c = fitted["rows"][0], fitted["columns"][1]
    # every pixel comes from one place of the source, the same in every tensor: the nearest inside it
    assert (r == r[:, :1]).all() and (c == c[:1]).all()
    for values, side, crop in ((r[:, 0], height, 96), (c[0], width, 160)):
        assert values.min() >= 0 and values.max() <= side - 1
        steps = values.diff()
        if side < crop:  # padded around the centre: the edges repeat, the inside is whole and in order
            assert values[0] == 0 and values[-1] == side - 1 and set(steps.tolist()) == {0.0, 1.0}
            assert (values == 0).sum() - (values == side - 1).sum() in (-1, 0, 1)
        else:  # cut: one window, in order
            assert (steps == 1).all()


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
