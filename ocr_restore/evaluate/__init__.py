"""Evaluation, apart from training: OCR accuracy before and after restoration (`ocr.py`, `ocr-restore bench`)
and the detector's masks (`detector.py`, `ocr-restore bench-detector`)."""
