"""The inpainting stage: known pixels kept, holes filled, crops planned around the holes at the text scale."""

import cv2
import numpy as np
import pytest
import torch

from ocr_restore import inpaint
from ocr_restore.errors import ModelError
from ocr_restore.inpaint import INPAINTERS, Crop, PConvInpainter, build_inpainter
from ocr_restore.nn.pconv_unet import CONFIGS, PConvUNet, load_pconv, save_pconv
from ocr_restore.nn.weights import native_bfloat16
from ocr_restore.textscale import TEXT_HEIGHT

from .conftest import render_line, stroke_over


@pytest.fixture
def tiny_weights(tmp_path):
    torch.manual_seed(0)
    model = PConvUNet(CONFIGS["tiny"])
    model(torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32))  # BatchNorm statistics off their defaults
    path = tmp_path / "pconv.safetensors"
    save_pconv(path, model.eval())
    return path


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="pconv, telea, ns, none"):
        build_inpainter("magic")


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(ModelError, match="ocr-restore train inpainter.*--inpainter telea"):
        build_inpainter("pconv", tmp_path / "absent.safetensors")


@pytest.mark.parametrize("name", INPAINTERS)
def test_every_inpainter_keeps_known_pixels(name, tiny_weights):
    image, hole = stroke_over(render_line())
    restored = build_inpainter(name, tiny_weights)(image, hole, em=TEXT_HEIGHT)
    assert restored.dtype == np.uint8 and restored.shape == image.shape
    assert np.array_equal(restored[~hole], image[~hole])
    if name != "none":
        assert not np.array_equal(restored[hole], image[hole])


def test_telea_is_opencv_radius_5():
    image, hole = stroke_over(render_line())
    want = cv2.inpaint(image, hole.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    assert np.array_equal(build_inpainter("telea")(image, hole)[hole], want[hole])
    clean = render_line()
    assert np.abs(want[hole].astype(int) - clean[hole]).mean() < np.abs(image[hole].astype(int) - clean[hole]).mean()


def test_pconv_at_text_scale_is_the_model_on_the_context_crop(tiny_weights):
    """One hole at scale 1: the stage's answer is the model's composite of the 1.5-em context crop."""
    inpainter = build_inpainter("pconv", tiny_weights, device="cpu")
    image = render_line(size=TEXT_HEIGHT)
    hole = np.zeros(image.shape[:2], bool)
    hole[14:22, 60:75] = True
    margin = int(np.ceil(1.5 * TEXT_HEIGHT))
    y0, y1, x0, x1 = max(0, 14 - margin), min(image.shape[0], 22 + margin), 60 - margin, 75 + margin
    crop = torch.from_numpy(image[y0:y1, x0:x1]).permute(2, 0, 1)[None].float() / 255
    mask = torch.from_numpy(~hole[y0:y1, x0:x1])[None, None].float()
    want = (inpainter.model.inpaint(crop, mask)[0].permute(1, 2, 0) * 255).round().byte().numpy()
    got = inpainter(image, hole, em=TEXT_HEIGHT)
    assert np.array_equal(got[y0:y1, x0:x1][hole[y0:y1, x0:x1]], want[hole[y0:y1, x0:x1]])


def test_plan_covers_every_hole_pixel_once_and_only_near_holes():
    inpainter = PConvInpainter(PConvUNet(CONFIGS["tiny"]))
    hole = np.zeros((3500, 2500), bool)
    cv2.line(hole.view(np.uint8), (100, 100), (2400, 3400), 1, 9)  # a stroke across the page
    hole[2000:2030, 300:360] = True
    hole[2010, 380] = True  # close to the previous hole: same group
    em, scale = 40.0, TEXT_HEIGHT / 40
    crops = inpainter.plan(hole, em, scale)
    covered = np.zeros(hole.shape, np.int32)
    for c in crops:
        y0, y1, x0, x1 = c.core
        covered[y0:y1, x0:x1] += c.paste
        cy0, cy1, cx0, cx1 = c.context
        assert cy0 <= y0 and cx0 <= x0 and cy1 >= y1 and cx1 >= x1
        h, w = inpainter.model_size(c, scale)
        assert h <= inpainter.tile + 2 * 1.5 * TEXT_HEIGHT + 2 and w <= inpainter.tile + 2 * 1.5 * TEXT_HEIGHT + 2
    assert np.array_equal(covered, hole.astype(np.int32))
    context_area = sum((c.context[1] - c.context[0]) * (c.context[3] - c.context[2]) for c in crops)
    assert context_area < 0.5 * hole.size, "a thin diagonal stroke must not cost the whole page"
    assert len({c.context for c in crops if c.core[0] >= 2000 and c.core[1] <= 2030}) == 1, "near holes share a crop"


def test_a_page_with_small_holes_is_restored_around_them_only():
    inpainter = PConvInpainter(PConvUNet(CONFIGS["tiny"]))
    hole = np.zeros((3500, 2500), bool)
    hole[300:320, 400:440] = hole[1800:1830, 2000:2030] = hole[3300:3310, 100:150] = True
    crops = inpainter.plan(hole, 40.0, TEXT_HEIGHT / 40)
    assert len(crops) == 3
    assert sum((c.context[1] - c.context[0]) * (c.context[3] - c.context[2]) for c in crops) < 0.02 * hole.size


def test_batches_pad_no_crop_beyond_the_unets_stride():
    """Mixed crop sizes: each batch holds crops of one padded size, so the model computes no more pixels than
    the crops padded one by one, and each crop is restored once."""
    inpainter = PConvInpainter(PConvUNet(CONFIGS["tiny"]), batch_pixels=3 * 64 * 64)
    multiple = inpainter.model.multiple
    padded = lambda n: -(-n // multiple) * multiple
    sizes = [(30, 200), (200, 30), (60, 60), (64, 64), (33, 33), (64, 64), (64, 64), (64, 64), (300, 300)]
    crops = [Crop((0, h, 0, w), (0, h, 0, w), np.ones((h, w), bool)) for h, w in sizes]
    batches = list(inpainter.batches(crops, 1.0))
    assert sorted(id(c) for b in batches for c in b) == sorted(id(c) for c in crops)
    computed = 0
    for batch in batches:
        shapes = {(padded(c.core[1]), padded(c.core[3])) for c in batch}
        assert len(shapes) == 1
        (h, w), = shapes
        assert len(batch) == 1 or len(batch) * h * w <= inpainter.batch_pixels
        computed += len(batch) * h * w
    assert computed == sum(padded(h) * padded(w) for h, w in sizes)


def test_text_is_scaled_to_the_model_height(tiny_weights):
    inpainter = build_inpainter("pconv", tiny_weights, device="cpu")
    seen = []
    forward = inpainter.model.forward
    inpainter.model.forward = lambda image, mask: seen.append(image.shape) or forward(image, mask)
    image, hole = stroke_over(render_line(size=96), thickness=12)
    restored = inpainter(image, hole, em=96.0)
    assert np.array_equal(restored[~hole], image[~hole])
    height = max(s[2] for s in seen)  # whole line height at a quarter of the size, plus the internal padding
    assert height <= image.shape[0] / 4 + 32


def test_word_and_page_sizes_work_and_a_page_costs_only_its_holes(tiny_weights):
    inpainter = build_inpainter("pconv", tiny_weights, device="cpu")
    word = render_line("cat", size=14)[:20]
    hole = np.zeros(word.shape[:2], bool)
    hole[5:12, 10:20] = True
    assert np.array_equal(inpainter(word, hole, em=14.0)[~hole], word[~hole])

    page = np.full((3500, 2500, 3), 255, np.uint8)
    hole = np.zeros(page.shape[:2], bool)
    for y, x in [(300, 400), (1800, 2000), (3300, 100)]:
        page[y:y + 40, x:x + 300] = 20  # a text-like dark band under each hole
        hole[y + 10:y + 30, x + 50:x + 90] = True
    seen = []
    forward = inpainter.model.forward
    inpainter.model.forward = lambda image, mask: seen.append(image.numel() // 3) or forward(image, mask)
    restored = inpainter(page, hole, em=42.0)
    assert np.array_equal(restored[~hole], page[~hole])
    page_at_model_scale = hole.size * (TEXT_HEIGHT / 42) ** 2
    assert sum(seen) < 0.01 * page_at_model_scale


def test_shipped_weights_restore_a_struck_line():
    # shipped weights are part of the package: missing, they are a packaging bug, never a reason to skip
    assert inpaint.DEFAULT_WEIGHTS.is_file(), f"{inpaint.DEFAULT_WEIGHTS} missing: run `ocr-restore train inpainter`"
    image = render_line(size=TEXT_HEIGHT)
    occluded, hole = stroke_over(image, colour=(20, 20, 20), thickness=6)
    restored = build_inpainter("pconv", device="cpu")(occluded, hole)
    error = np.abs(restored[hole].astype(int) - image[hole]).mean()
    assert error < 0.5 * np.abs(occluded[hole].astype(int) - image[hole]).mean()



@pytest.mark.skipif(not native_bfloat16(torch.device("cpu")), reason="this CPU emulates bfloat16")
def test_shipped_weights_in_bfloat16_restore_what_they_restore_in_float32():
    """float32, the precision they trained in, is the reference: bfloat16 is a speed-up, not another model."""
    occluded, hole = stroke_over(render_line(size=TEXT_HEIGHT), colour=(20, 20, 20), thickness=6)
    fast = build_inpainter("pconv", device="cpu")
    assert fast.model.encoder[0].conv.weight.dtype == torch.bfloat16, "a CPU with native bfloat16 runs the U-Net in it"
    exact = PConvInpainter(load_pconv(inpaint.DEFAULT_WEIGHTS), bfloat16=False)
    difference = np.abs(fast(occluded, hole, em=TEXT_HEIGHT).astype(int) - exact(occluded, hole, em=TEXT_HEIGHT))
    assert difference[~hole].max() == 0
    assert difference[hole].mean() < 1 and difference[hole].max() <= 16
