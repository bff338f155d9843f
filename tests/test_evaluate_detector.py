"""The detector's evaluation: the bookkeeping of IoU, recall and precision by group, and false alarms on real images."""

import cv2
import numpy as np
import pytest

from ocr_restore.detect import ClassicalDetector, Detection, Detector
from ocr_restore.evaluate import detector as evaluation
from ocr_restore.errors import InputFileError
from ocr_restore.evaluate.detector import evaluate_detector, evaluate_on_set, false_positives_on_real
from ocr_restore.files import write_image


class KnowingDetector(Detector):
    """Answers from the occlusion that made the image (remembered by `remembering`), to check the bookkeeping."""

    name = "knowing"

    def __init__(self, made: dict, answer):
        super().__init__()
        self.made, self.answer = made, answer

    def __call__(self, image, em=None):
        occlusion = self.made.get(image.tobytes())
        mask = self.answer(occlusion) if occlusion is not None else np.zeros(image.shape[:2], bool)
        return Detection(mask, np.zeros_like(mask), mask.astype(np.float32))


@pytest.fixture
def made(monkeypatch) -> dict:
    """The occlusions the evaluation makes, by image bytes."""
    made = {}
    real_occlude = evaluation.occlude

    def remembering_occlude(sample, rng, coverage):
        occlusion = real_occlude(sample, rng, coverage)
        occlusion.clean = sample.image
        made[occlusion.image.tobytes()] = occlusion
        return occlusion

    monkeypatch.setattr(evaluation, "occlude", remembering_occlude)
    return made


def _overall(table):
    return table[(table.kind == "all") & (table.group == "all")].iloc[0]


def test_evaluation_of_a_perfect_detector(made):
    table = evaluate_detector(KnowingDetector(made, lambda o: o.mask), kinds=("docs", "scene"), n=2, seed=0)
    assert (table.iou.dropna() == 1).all() and (table.recall.dropna() == 1).all()
    overall = _overall(table)
    assert overall.fp_clean == 0 and overall.images == 4 and overall.ms >= 0
    assert set(table.kind) == {"all", "docs", "scene"} and {"all", "shape", "colour", "style", "change", "part"} == set(table.group)


def test_evaluation_tells_recall_by_how_much_a_pixel_changed(made):
    changed_a_lot = lambda o: np.abs(o.image.astype(int) - o.clean).max(-1) > 64
    table = evaluate_detector(KnowingDetector(made, changed_a_lot), kinds=("docs",), n=3, seed=0)
    bands = table[(table.kind == "all") & (table.group == "change")].set_index("value")
    assert list(bands.index) == ["001-008", "009-016", "017-032", "033-064", "065-255"]
    assert bands.loc["065-255", "recall"] == 1 and (bands.recall.iloc[:-1] == 0).all()
    assert bands.iou.isna().all() and bands.precision.isna().all()  # a false positive changed no pixel
    overall = _overall(table)
    # every pixel of the truth in one band; the overall recall is the bands' weighted by their pixels
    assert bands.pixels.sum() == overall.pixels
    assert np.isclose(overall.recall, bands.pixels["065-255"] / overall.pixels)


def test_evaluation_tells_recall_on_erasures_edges_and_the_rest(made):
    erasers = lambda o: np.isin(o.shape_ids, [k for k, s in enumerate(o.shapes, 1) if s.colour in ("paper", "white")])
    core = lambda o: cv2.erode(o.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # 3 px in from the edge
    for flags, recall in ((erasers, {"erasure": 1, "edge": 0, "interior": 0}),
                          (lambda o: core(o) & ~erasers(o), {"erasure": 0, "edge": 0})):
        table = evaluate_detector(KnowingDetector(made, flags), kinds=("docs", "receipts"), n=4, seed=3)
        parts = table[(table.kind == "all") & (table.group == "part")].set_index("value")
        assert list(parts.index) == ["edge", "erasure", "interior"] and (parts.pixels > 0).all()
        assert parts.pixels.sum() == _overall(table).pixels  # each pixel of the truth in one part
        assert parts.recall.to_dict() | recall == parts.recall.to_dict()
    assert 0 < parts.recall["interior"] < 1  # the core of the other shapes misses their inner edge only


def test_evaluation_charges_shapes_by_colour(made):
    black = lambda o: np.isin(o.shape_ids, [k for k, s in enumerate(o.shapes, 1) if s.colour == "black"])
    black_only = KnowingDetector(made, black)
    table = evaluate_detector(black_only, kinds=("docs",), n=4, seed=0)
    colours = table[(table.kind == "all") & (table.group == "colour")].set_index("value")
    assert "black" in colours.index and len(colours) > 1
    assert colours.loc["black", "recall"] == 1 and (colours.drop("black").recall == 0).all()
    assert 0 < _overall(table).recall < 1


def test_evaluation_of_empty_and_full_detectors(made):
    table = evaluate_detector(KnowingDetector(made, lambda o: np.zeros_like(o.mask)), kinds=("docs",), n=2, seed=0)
    assert (table.recall.dropna() == 0).all() and (table.iou.dropna() == 0).all()

    class FlagEverything(Detector):
        def probabilities(self, image, em, remeasure=True):
            return np.ones(image.shape[:2], np.float32), np.zeros(image.shape[:2], np.float32), em

    overall = _overall(evaluate_detector(FlagEverything(), kinds=("docs",), n=2, seed=0))
    assert overall.recall == 1.0 and overall.precision < 0.9
    assert overall.fp_clean > 1  # every pixel of the clean images, more than their ink


def test_evaluation_runs_a_real_detector():
    table = evaluate_detector(ClassicalDetector(), kinds=("receipts",), n=2, seed=1)
    overall = _overall(table)
    assert 0 <= overall.iou <= 1 and overall.ms > 0 and overall.fp_clean >= 0


def test_false_positives_on_real_images_count_per_ink_pixel(tmp_path):
    for name, ink in (("dark-on-light.png", (0, 0, 0)), ("light-on-dark.png", (255, 255, 255))):
        image = np.full((50, 100, 3), 255 - np.array(ink), np.uint8)
        image[10:20, 10:30] = ink  # 200 ink pixels, on either side of the Otsu threshold
        write_image(tmp_path / name, image)

    class FlagFirstPixels(Detector):
        def __init__(self, pixels):
            super().__init__()
            self.pixels = pixels

        def probabilities(self, image, em, remeasure=True):
            occluder = np.zeros(image.shape[:2], np.float32)
            occluder.flat[: self.pixels] = 1
            return occluder, np.zeros_like(occluder), em

    found = false_positives_on_real(FlagFirstPixels(50), tmp_path)
    assert found == {"set": str(tmp_path), "images": 2, "fp_per_ink": 0.25, "images_flagged": 1.0}
    assert false_positives_on_real(FlagFirstPixels(0), tmp_path)["images_flagged"] == 0


class FixedMask(Detector):
    """Flags the same pixels of every image."""

    def __init__(self, mask):
        super().__init__()
        self.mask = mask

    def probabilities(self, image, em, remeasure=True):
        return self.mask.astype(np.float32), np.zeros(self.mask.shape, np.float32), em


def test_an_occluded_set_counts_what_the_occluders_changed_and_not_their_faint_spill(tmp_path):
    clean = np.full((40, 60, 3), 255, np.uint8)
    clean[10:21, 10:51] = 0  # 451 ink pixels
    occluded = clean.copy()
    occluded[0:6] -= 100  # changed by 100: 360 pixels
    occluded[30:36] -= 20  # changed by 20: 360 pixels, counted, not strongly changed
    occluded[36:40] -= 5  # changed by 5: counts neither way
    for folder, image in (("clean", clean), ("occluded", occluded)):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "a.png", image)
    flags = np.zeros((40, 60), bool)
    flags[0:6] = flags[25:28] = flags[36:40] = True  # the strong change, 180 unchanged pixels, the faint change

    found = evaluate_on_set(FixedMask(flags), tmp_path)
    # hits 360 of a truth of 720; 540 counted flags (the faint change's 240 not among them)
    assert found == pytest.approx({"set": str(tmp_path), "images": 1, "iou": 360 / 900, "recall": 0.5,
                                   "recall_over_32": 1.0, "precision": 360 / 540,
                                   "fp_clean_per_ink": 780 / 451, "clean_images_flagged": 1.0})


def test_an_occluded_set_without_its_clean_originals_is_named(tmp_path):
    (tmp_path / "occluded").mkdir()
    write_image(tmp_path / "occluded" / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InputFileError, match=f"{tmp_path}: not an occluded set.*clean/"):
        evaluate_on_set(FixedMask(np.zeros((8, 8), bool)), tmp_path)
    (tmp_path / "clean").mkdir()
    write_image(tmp_path / "clean" / "a.png", np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(InputFileError, match="a.png: 8x8, but its clean original .* is 9x8"):
        evaluate_on_set(FixedMask(np.zeros((8, 8), bool)), tmp_path)
