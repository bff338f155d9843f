"""The second opinion: which of two readings of a word the input's visible ink supports.

Where a hole touches a word, the confident reading has two readings of it, the restored image's and the
input's, and must keep one. The OCR engine's own confidence chooses badly between them on real images:
Tesseract is sure of letters the inpainter drew wrong. EasyOCR's English CRNN, a recogniser trained apart
from both, scores each reading's text (its CTC log-likelihood) on the input's crop, with each column's class
probabilities mixed with uniform ones in the share the mask hides. The reading that better fits the ink
there is to see wins. On the restored crop it would score the fill, which is the thing in question.
"""

import numpy as np
import torch

from .language import pretrained_recognizer
from .nn.recognizer import CRNN, log_likelihoods, read_box
from .ocr import Word, words_extent

__all__ = ["InkJudge"]


class InkJudge:
    """`judge(image, mask, restored_words, input_words)`: whether the input's words are the better reading."""

    def __init__(self, recognizer: CRNN | None = None):
        self.recognizer = recognizer or pretrained_recognizer("the second opinion")

    def describe(self) -> str:
        return "EasyOCR english_g2 CTC on the input's visible ink"

    def __call__(self, image: np.ndarray, mask: np.ndarray, restored: list[Word], original: list[Word]
                 ) -> bool | None:
        """True: `original` (the input's words) fits the input's visible ink better than `restored`; None: no
        opinion, where the texts agree or the crop is too small to read."""
        texts = [" ".join(w.text for w in words) for words in (restored, original)]
        if texts[0] == texts[1]:
            return None
        read = read_box(self.recognizer, image, mask, words_extent(restored + original))
        if read is None:
            return None
        scores = log_likelihoods(read[0], texts, hidden=read[1])
        if not torch.isfinite(scores).any():
            return None
        return bool(scores[1] > scores[0])
