"""PDFs and multi-page TIFFs: a page is an image, with its own outputs and row, and the document has its text."""

import shutil

import cv2
import numpy as np
import pandas as pd
import pikepdf
import pytest
from PIL import Image

from ocr_restore.files import page_count, read_page

from .conftest import render_lines, stroke_over
from .test_cli import CLASSICAL, invoke, tree_digest

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

TEXTS = [("Partial convolution", "restores hidden text"), ("The second page", "reads as well")]


def occluded_pages():
    """Each page's occluded image and exact mask."""
    return [stroke_over(render_lines(*lines, size=40)) for lines in TEXTS]


def write_pdf(path, pages, dpi=150):
    images = [Image.fromarray(image) for image, _ in pages]
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)


def write_tiff(path, pages):
    assert cv2.imwritemulti(str(path), [cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image, _ in pages])


def test_a_pdf_page_is_rendered_at_its_resolution(tmp_path):
    pages = occluded_pages()
    write_pdf(tmp_path / "scan.pdf", pages, dpi=150)
    assert page_count(tmp_path / "scan.pdf") == 2
    first = read_page(tmp_path / "scan.pdf", 0, dpi=150)
    assert first.shape == pages[0][0].shape  # 150 dpi back at 150 dpi: the pixels that went in
    image, stroke = pages[0]
    error, swapped = (np.abs(first.astype(int) - truth)[stroke].mean() for truth in (image, image[..., ::-1]))
    assert error < swapped / 3  # the red stroke is red: the image Pillow stored (as JPEG), in RGB order
    twice = read_page(tmp_path / "scan.pdf", 1, dpi=300).shape[:2]
    assert all(abs(side - 2 * n) <= 1 for side, n in zip(twice, pages[1][0].shape[:2]))  # to PDFium's rounding


def test_run_reads_a_pdf_page_by_page_and_writes_the_whole_text(tmp_path):
    write_pdf(tmp_path / "scan.pdf", occluded_pages())
    (tmp_path / "scan.p0002.gt.txt").write_text("\n".join(TEXTS[1]))  # a page's transcript is its own
    result = invoke(tmp_path / "scan.pdf", "-o", tmp_path / "out", "--dpi", "150", *CLASSICAL)
    assert result.exit_code == 0, result.output
    assert "==> " + str(tmp_path / "scan.pdf") + " page 2 <==" in result.stdout
    assert result.stdout.count("-- accuracy") == 1
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"scan.p000{n}{suffix}" for n in (1, 2) for suffix in (".txt", ".json", ".restored.png",
                                                                                   ".mask.png")] + ["scan.txt"])
    pages = [(out / f"scan.p000{n}.txt").read_text().rstrip("\n") for n in (1, 2)]
    assert (out / "scan.txt").read_text() == pages[0] + "\n\f" + pages[1] + "\n"
    assert "restores hidden text" in pages[0] and "reads as well" in pages[1]


def test_batch_takes_pdfs_and_tiffs_a_row_per_page_and_resumes(tmp_path):
    pages = occluded_pages()
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    write_pdf(root / "a.pdf", pages)
    write_tiff(root / "sub" / "b.tif", pages)
    Image.fromarray(pages[0][0]).save(root / "c.png")
    (root / "broken.pdf").write_bytes((root / "a.pdf").read_bytes()[:400])
    encrypted = pikepdf.open(root / "a.pdf")
    encrypted.save(root / "locked.pdf", encryption=pikepdf.Encryption(owner="o", user="secret"))
    masks = tmp_path / "masks"
    (masks / "sub").mkdir(parents=True)
    for n, (_, mask) in enumerate(pages, 1):  # the TIFF's pages take their masks by page name
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / "sub" / f"b.p000{n}.png")
    before = tree_digest(root)

    result = invoke("batch", root, "-o", tmp_path / "out", "--dpi", "150", *CLASSICAL)
    assert result.exit_code == 1
    assert "5 done, 0 already done, 2 failed" in result.stdout
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(zip(table["file"], table["page"].fillna(0).astype(int))) == [
        ("a.pdf", 1), ("a.pdf", 2), ("broken.pdf", 0), ("c.png", 0), ("locked.pdf", 0), ("sub/b.tif", 1),
        ("sub/b.tif", 2)]
    errors = table.set_index("file")["error"]
    assert "broken.pdf: not a readable PDF" in errors["broken.pdf"]
    assert "locked.pdf: the PDF is encrypted; decrypt it first" in errors["locked.pdf"]
    for document in ("a", "sub/b"):
        whole = (tmp_path / "out" / f"{document}.txt").read_text()
        assert whole.count("\f") == 1 and "reads as well" in whole
    assert tree_digest(root) == before

    again = invoke("batch", root, "-o", tmp_path / "out", "--dpi", "150", "--masks", masks, *CLASSICAL)
    assert "0 done, 5 already done, 2 failed" in again.stdout  # the pages done are skipped, masks or not
    (tmp_path / "out" / "sub" / "b.p0002.json").unlink()
    (tmp_path / "out" / "sub" / "b.txt").unlink()
    again = invoke("batch", root, "-o", tmp_path / "out", "--dpi", "150", "--masks", masks, *CLASSICAL)
    assert "1 done, 4 already done, 2 failed" in again.stdout
    assert (tmp_path / "out" / "sub" / "b.txt").is_file()  # the document is whole again
    written = np.asarray(Image.open(tmp_path / "out" / "sub" / "b.p0002.mask.png")) > 0
    assert np.array_equal(written, pages[1][1])  # its own mask, by its page name


def test_two_inputs_that_would_write_the_same_outputs_are_refused(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    write_pdf(root / "scan.pdf", occluded_pages())
    Image.fromarray(occluded_pages()[0][0]).save(root / "scan.png")
    result = invoke("batch", root, "-o", tmp_path / "out", *CLASSICAL)
    assert "scan.png: its outputs would overwrite those of" in result.stderr
    assert (tmp_path / "out" / "scan.txt").read_text().count("\f") == 1  # the PDF's, whole


def test_bench_scores_a_pdf_and_a_tiff_page_by_page_against_the_clean_document(tmp_path):
    occluded, clean, masks = tmp_path / "in", tmp_path / "clean", tmp_path / "masks"
    for folder in (occluded, clean, masks):
        folder.mkdir()
    pages = occluded_pages()
    write_pdf(occluded / "scan.pdf", pages)
    write_tiff(occluded / "fax.tif", pages)
    for page, (_, mask) in enumerate(pages, 1):
        for stem in ("scan", "fax"):
            cv2.imwrite(str(masks / f"{stem}.p000{page}.png"), mask.astype(np.uint8) * 255)
    (occluded / "scan.p0001.gt.txt").write_text("\n".join(TEXTS[0]))  # scan's second page has no transcript
    for page, lines in enumerate(TEXTS, 1):
        (occluded / f"fax.p000{page}.gt.txt").write_text("\n".join(lines))
    # the clean references: the same PDF, clean, and the TIFF's pages as images
    images = [render_lines(*lines, size=40) for lines in TEXTS]
    write_pdf(clean / "scan.pdf", [(image, None) for image in images])
    for page, image in enumerate(images, 1):
        cv2.imwrite(str(clean / f"fax.p000{page}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    result = invoke("bench", occluded, "-o", tmp_path / "report", "--masks", masks, "--clean", clean,
                    "--dpi", "150", *CLASSICAL)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(tmp_path / "report" / "report.csv").set_index("name")
    assert sorted(report.index) == ["fax.p0001", "fax.p0002", "scan.p0001"]
    assert (report["cer_clean"] <= report["cer_occluded"]).all() and (report["cer_clean"] < 0.05).all()
    assert (report["occluded_fraction"] > 0).all()  # each page's own mask
    assert (tmp_path / "report" / "restored" / "fax.p0002.png").is_file()
