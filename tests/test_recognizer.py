"""The pretrained CRNN recogniser: it reads rendered words, its CTC loss ranks transcripts and backpropagates."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

pytest.importorskip("easyocr_en_models")

from ocr_restore.errors import ModelError  # noqa: E402
from ocr_restore.nn import recognizer  # noqa: E402
from ocr_restore.nn.recognizer import ALPHABET, CRNN, ctc_loss, decode, load_recognizer, prepare  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ["Hello", "receipt", "TOTAL", "12.50", "Partial", "window", "August", "London", "price", "coffee"]


def render(text: str, size: int = 40, margin: int = 10) -> torch.Tensor:
    """Black text on white as (1, 3, H, W) in [0, 1].

    The margin is a quarter of the font size, as a detector's crop would leave: with half the
    font size or more of blank paper on the left, the model reads a spurious leading "~".
    """
    font = ImageFont.truetype(FONT, size)
    x0, y0, x1, y1 = font.getbbox(text)
    image = Image.new("RGB", (x1 - x0 + 2 * margin, y1 - y0 + 2 * margin), "white")
    ImageDraw.Draw(image).text((margin - x0, margin - y0), text, font=font, fill="black")
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module")
def net() -> CRNN:
    return load_recognizer()


def read(model: CRNN, image: torch.Tensor) -> str:
    with torch.no_grad():
        return decode(model(prepare(image)))[0]


def test_alphabet_is_blank_plus_easyocr_english_characters():
    assert len(ALPHABET) == 96 and len(set(ALPHABET)) == 96
    assert ALPHABET[:10] == "0123456789" and ALPHABET[42:44] == " €" and ALPHABET[-1] == "z"


def test_reads_clean_rendered_words(net):
    # the check that the layer layout and the weights match: exact, case-sensitive reads
    reads = [read(net, render(word)) for word in WORDS]
    right = sum(got == want for got, want in zip(reads, WORDS))
    assert right >= 9, list(zip(WORDS, reads))


def test_random_weights_read_nothing():
    # the reading test above would catch a layout that loads but computes the wrong thing
    torch.manual_seed(0)
    random_net = CRNN().eval()
    assert sum(read(random_net, render(word)) == word for word in WORDS) <= 1


def test_shapes_and_features(net):
    x = prepare(torch.rand(2, 3, 32, 128))
    assert x.shape == (2, 1, 64, 256) and x.min() >= -1 and x.max() <= 1
    with torch.no_grad():
        assert net(x).shape == (2, 63, 97)
        assert [f.shape[1:] for f in net.features(x)] == [(32, 32, 128), (64, 16, 64), (128, 8, 64)]


def test_decode_merges_repeats_and_drops_blanks():
    h, i = ALPHABET.index("h") + 1, ALPHABET.index("i") + 1
    logits = torch.nn.functional.one_hot(torch.tensor([[0, h, h, 0, i, i, 0, i]]), 97).float()
    assert decode(logits) == ["hii"]


def test_ctc_loss_ranks_transcripts_and_reaches_the_image(net):
    image = render("coffee", size=30).requires_grad_(True)  # 30 px font: prepare has to resize
    logits = net(prepare(image))
    right, wrong = ctc_loss(logits, ["coffee"]), ctc_loss(logits, ["window"])
    assert torch.isfinite(right) and torch.isfinite(wrong) and right < wrong
    right.backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_ctc_loss_drops_unknown_characters_and_empty_transcripts(net):
    with torch.no_grad():
        logits = net(prepare(render("price")))
    alone = ctc_loss(logits, ["price"])
    assert torch.allclose(ctc_loss(logits, ["pr日ice"]), alone)
    assert torch.allclose(ctc_loss(logits.expand(2, -1, -1), ["price", ""]), alone)
    nothing = ctc_loss(logits.clone().requires_grad_(True), ["日本"])
    assert nothing.item() == 0 and nothing.requires_grad
    assert torch.isfinite(ctc_loss(logits, ["x" * 200]))  # more characters than columns: zero_infinity


def test_load_recognizer_is_frozen(net):
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())


def test_missing_or_bad_weights_are_model_errors(monkeypatch, tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.pth"):
        load_recognizer(path=tmp_path / "junk.pth")
    with pytest.raises(ModelError, match="not found"):
        load_recognizer(path=tmp_path / "absent.pth")

    def absent(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(recognizer.resources, "files", absent)
    with pytest.raises(ModelError, match=r"english_g2\.pth.*pip install -e '\.\[train\]'"):
        load_recognizer()
