"""The names a user chooses among, for every stage, and the defaults: a module of constants, so that the command line
can offer them without importing torch."""

DETECTORS = ("model", "classical")
INPAINTERS = ("pconv", "telea", "ns", "none")
READINGS = ("confident", "restored")
OCR_ENGINES = ("tesseract", "rapidocr")  # rapidocr: PP-OCRv4 on onnxruntime, for photos of receipts and signs
# What "auto" runs, and the classical stage it falls back to, loudly, when the weights are missing.
# PConv replaced Telea as the default inpainter once it read better end to end (`make bench`, models/README.md).
AUTO_STAGES = {"detector": ("model", "classical"), "inpainter": ("pconv", "telea")}
FORMATS = ("hocr", "alto")  # output formats beside .txt and .json (ocr_restore.formats)
DPI = 300  # the resolution PDF pages are rasterised at, unless --dpi says otherwise
SHAPE_KINDS = ("line", "stroke", "scribble", "circle", "ellipse", "rect", "polygon", "blob", "freeform")  # occluders
