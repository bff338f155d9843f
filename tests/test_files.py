"""Reading every common image kind, and clear errors for files that cannot be read."""

import numpy as np
import pytest
from PIL import Image

from ocr_restore.errors import InputFileError
from ocr_restore.files import find_images, read_image, read_mask, read_transcripts, write_image


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_formats_round_trip(tmp_path, rgb, suffix):
    path = tmp_path / f"x{suffix}"
    Image.fromarray(rgb).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    assert np.array_equal(read_image(path), rgb)


def test_jpeg_reads_as_rgb(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=95)
    image = read_image(tmp_path / "x.jpg")
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8


def test_grayscale_palette_rgba_and_16_bit(tmp_path):
    gray = np.arange(600, dtype=np.uint8).reshape(20, 30)
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png")[..., 1], gray)

    Image.fromarray(gray).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (20, 30, 3)

    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:10, :, 3] = 255  # top half opaque black, bottom half transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image[:10].max() == 0 and image[10:].min() == 255  # transparency shows paper (white)

    deep = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    image = read_image(tmp_path / "d.png")
    assert image.dtype == np.uint8 and image[..., 0].max() == round(int(deep.max()) * 255 / 65535)


def test_exif_orientation_is_honoured(tmp_path):
    wide = np.zeros((10, 40, 3), np.uint8)
    image = Image.fromarray(wide)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape[:2] == (40, 10)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_bytes(b"this is not an image at all"), "not an image in a supported format"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputFileError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_and_corrupt_files(tmp_path, rgb):
    good = tmp_path / "good.png"
    Image.fromarray(rgb).save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[60:120] = b"\xff" * 60
    (tmp_path / "corrupt.png").write_bytes(bytes(corrupt))
    for name in ("truncated.png", "corrupt.png"):
        with pytest.raises(InputFileError, match="truncated or corrupt") as info:
            read_image(tmp_path / name)
        assert name in str(info.value)


def test_unsupported_format(tmp_path):
    path = tmp_path / "page.pdf"
    path.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n")
    with pytest.raises(InputFileError, match="supported format"):
        read_image(path)


def test_mask_of_the_wrong_size(tmp_path):
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(InputFileError, match="mask is 6x5 but the image is 30x20"):
        read_mask(tmp_path / "m.png", (20, 30))


def test_mask_non_zero_is_occluded(tmp_path):
    values = np.array([[0, 1, 255]], np.uint8)
    Image.fromarray(values).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[False, True, True]]


def test_transcripts_from_tsv_and_sidecars(tmp_path):
    (tmp_path / "gt.tsv").write_text("a.png\tfirst line\\nsecond\nb\tother\n")
    assert read_transcripts(tmp_path / "gt.tsv") == {"a": "first line\nsecond", "b": "other"}
    (tmp_path / "side").mkdir()
    (tmp_path / "side" / "c.gt.txt").write_text("sidecar\n")
    assert read_transcripts(tmp_path / "side") == {"c": "sidecar"}


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, rgb):
    write_image(tmp_path / "out" / "x.png", rgb)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.png"]
    assert np.array_equal(read_image(tmp_path / "out" / "x.png"), rgb)


def test_find_images_recurses_and_skips_the_output_folder(tmp_path, rgb):
    for name in ("a.png", "sub/b.JPG", "out/c.png", "notes.txt", ".hidden.png", "scan.PDF"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_images(tmp_path, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.png", "sub/b.JPG"]
    found = find_images(tmp_path, exclude=tmp_path / "out", documents=True)  # what batch reads
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.png", "scan.PDF", "sub/b.JPG"]
