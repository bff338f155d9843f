"""The `ocr-restore` command: thin click wrappers over the library.

`ocr-restore scan.png` runs the pipeline (the `run` command is the default);
`batch`, `bench`, `synth` and `train` are the other commands.
"""

import json
import sys
import traceback
from pathlib import Path

import click

from .choices import DETECTORS, DPI, FORMATS, INPAINTERS, OCR_ENGINES, READINGS, SHAPE_KINDS
from .errors import InputFileError, MissingDependencyError, OcrRestoreError

__all__ = ["main"]

DETECTOR_CHOICES = ("auto", *DETECTORS)
INPAINTER_CHOICES = ("auto", *INPAINTERS)


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a command, is an image for `run`.

    It also owns the exit codes: an OcrRestoreError becomes one line on stderr
    and its exit code; the traceback is shown only with -v.
    """

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        elif not args:
            args = ["--help"]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OcrRestoreError as e:
            if "-v" in sys.argv or "--verbose" in sys.argv:
                traceback.print_exc()
            click.echo(f"ocr-restore: error: {e}", err=True)
            ctx.exit(e.exit_code)


def _pipeline_options(detector, inpainter, lang, psm, weights=(), language_prior=True, reading="confident",
                      ocr="tesseract") -> dict:
    return {"detector": detector, "inpainter": inpainter, "lang": lang, "psm": psm, "weights": tuple(weights),
            "language_prior": language_prior, "reading": reading, "ocr": ocr}


def _engines(ctx, param, value: str) -> tuple[str, ...]:
    """--ocr: engine names, comma-separated; each once, each one of OCR_ENGINES."""
    engines = tuple(name.strip() for name in value.split(","))
    unknown = [name for name in engines if name not in OCR_ENGINES]
    if unknown or len(set(engines)) < len(engines):
        raise click.BadParameter(f"{value!r}: give {' or '.join(OCR_ENGINES)}, or for bench both, comma-separated")
    return engines


def _checked_engines(engines: tuple[str, ...], lang: str, several: bool = False) -> tuple[str, ...]:
    """The engines, if they go with --lang and there is one where only one is read with."""
    if len(engines) > 1 and not several:
        raise click.UsageError("--ocr takes one engine here; `ocr-restore bench --ocr tesseract,rapidocr` compares them")
    if "rapidocr" in engines and lang != "eng":
        raise click.UsageError(f"--lang {lang}: rapidocr reads with PP-OCRv4's one Latin and Chinese model; "
                               "--lang is Tesseract's")
    return engines


def _options(*options):
    """A decorator applying click `options` in the order they are listed."""

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


pipeline_options = _options(  # shared by every command that runs the pipeline
    click.option("--detector", type=click.Choice(DETECTOR_CHOICES), default="auto", show_default=True,
        help="Occlusion detector; auto = the shipped model, else the classical one (with a warning)."),
    click.option("--inpainter", type=click.Choice(INPAINTER_CHOICES), default="auto", show_default=True,
        help="Hole filler; auto = the shipped PConv U-Net (OpenCV Telea, with a warning, if its weights are missing)."),
    click.option("--lang", default="eng", show_default=True, help="Tesseract language(s), e.g. eng+deu."),
    click.option("--psm", type=click.IntRange(0, 13), default=None,
        help="Tesseract page segmentation mode [default: 7 for one line, 6 for a block, 3 for a page]; rapidocr "
             "reads the image as one line at 7, 8 and 13, and detects its lines at any other."),
    click.option("--ocr", default="tesseract", show_default=True, callback=_engines, metavar="tesseract|rapidocr",
        help="OCR engine: tesseract, or rapidocr (PP-OCRv4 on onnxruntime: photos of receipts and signs; needs "
             "`make setup` or pip install 'ocr-restore[rapidocr]'). bench reads with several, comma-separated."),
    click.option("--weights", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A detector or PConv weights file to use instead of the shipped one (repeatable; each file names its model)."),
    click.option("--language-prior/--no-language-prior", default=True, show_default=True,
        help="Let an English lexicon and a recogniser replace a word the mask partly hides and the OCR is unsure "
             "of by the likeliest word that fits its visible letters (source: language). Never numbers or codes."),
    click.option("-v", "--verbose", is_flag=True, help="Show tracebacks on errors."),
)


dpi_option = click.option("--dpi", type=click.IntRange(36, 1200), default=DPI, show_default=True,
                          help="Resolution PDF pages are rasterised at.")
def _listed(choices: tuple[str, ...]):
    """A click callback: names comma-separated, in one value or several, each one of `choices`, kept once each."""

    def parse(ctx, param, values) -> tuple[str, ...]:
        values = (values,) if isinstance(values, str) else values
        names = tuple(dict.fromkeys(name.strip() for value in values for name in value.split(",")))
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise click.BadParameter(f"{', '.join(unknown)}: choose among {', '.join(choices)}")
        return names

    return parse


format_option = click.option(  # run and batch
    "--format", "formats", multiple=True, callback=_listed(FORMATS), metavar="hocr,alto",
    help="Also write <stem>.hocr (hOCR 1.2) and/or <stem>.alto.xml (ALTO 4) beside .txt and .json: word boxes, "
         "confidences and provenance (x_source, x_hidden; ALTO PROCESSINGREFS).")
reading_option = click.option(  # run and batch; bench reports both readings
    "--reading", type=click.Choice(READINGS), default="confident", show_default=True,
    help="confident: also read the input and keep, word by word, the reading the OCR is clearly more "
         "confident of; restored: read the restored image only (half the OCR work).")


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ocr-restore")
def main():
    """Read text that shapes partly cover: detect the occluders, inpaint them, OCR the result.

    \b
    ocr-restore scan.png [more.png ...]       restore and read images
    ocr-restore batch IN_DIR -o OUT_DIR        a whole folder tree, resumable
    ocr-restore bench IN_DIR -o REPORT_DIR     accuracy before/after restoration
    """


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--mask", type=click.Path(path_type=Path), help="Use this mask (non-zero = occluded) instead of the detector.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
              help="Write <stem>.txt, .restored.png, .mask.png and .json here.")
@click.option("--gt", type=click.Path(path_type=Path),
              help="Transcript (plain text, or a name<TAB>text TSV) to score against; default <stem>.gt.txt beside the image.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@format_option
@dpi_option
@pipeline_options
@reading_option
def run(images, mask, out, gt, as_json, formats, dpi, detector, inpainter, lang, psm, ocr, weights, language_prior,
        reading, verbose):
    """Restore and read IMAGES (PDFs and multi-page TIFFs page by page), printing the recognised text.

    A document's pages are written as <stem>.p0001.txt and so on, and its whole text as <stem>.txt.
    """
    from .files import document_text, page_stem, pages, write_text
    from .pipeline import Pipeline

    if mask is not None and len(images) > 1:
        raise InputFileError(f"{mask}: --mask applies to one image, but {len(images)} were given")
    if formats and out is None:
        raise click.UsageError("--format writes files beside the other outputs: give -o DIR too")
    pipeline = Pipeline(**_pipeline_options(detector, inpainter, lang, psm, weights, language_prior, reading,
                                            _checked_engines(ocr, lang)[0]))
    records, failed = [], 0
    for path in images:
        try:
            to_read = pages(path)
            document = to_read != [None]
            if document and mask is not None:
                raise InputFileError(f"{mask}: --mask applies to one image, but {path} has {len(to_read)} pages; "
                                     "give each page's mask to `batch --masks`")
            texts = []
            for page in to_read:
                result = pipeline.run_file(path, mask, gt, page, dpi)
                texts.append(result.text)
                if out is not None:
                    result.write(out / page_stem(path.stem, page), formats, path.name, page)
                records.append({"file": str(path), **({"page": page + 1} if document else {}), **result.to_json()})
                if not as_json:
                    _print_result(result, f"{path} page {page + 1}" if document else f"{path}",
                                  header=len(images) > 1 or document)
            if document and out is not None:
                write_text(out / f"{path.stem}.txt", document_text(texts))
        except OcrRestoreError as e:
            if len(images) == 1:
                raise
            click.echo(f"ocr-restore: error: {e}", err=True)
            failed += 1
    if as_json:
        one_image = len(images) == 1 and len(records) == 1 and "page" not in records[0]
        click.echo(json.dumps(records[0] if one_image else records, indent=2))
    if failed:
        sys.exit(InputFileError.exit_code)


def _print_result(result, label: str, header: bool) -> None:
    """The text on stdout (under `==> label <==` with `header`); the stages and the accuracy, if scored."""
    stages = result.stages
    from_input = f", {result.words_from_input} word(s) read from the input" if result.words_from_input else ""
    click.echo(f"ocr-restore: {label}: detector={stages['detector']} inpainter={stages['inpainter']} "
               f"reading={stages['reading']}{from_input} ({sum(result.seconds.values()):.2f} s)", err=True)
    if header:
        click.echo(f"==> {label} <==")
    click.echo(result.text)
    if result.accuracy:
        before, after = result.accuracy["before"], result.accuracy["after"]
        click.echo(f"-- accuracy: CER {before['cer']:.3f} -> {after['cer']:.3f}, "
                   f"WER {before['wer']:.3f} -> {after['wer']:.3f} (before -> after restoration)")


@main.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; mirrors IN_DIR's tree.")
@click.option("--masks", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Take the mask of a/b.jpg from MASKS/a/b.png instead of running the detector.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes.")
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run on a Dask cluster instead: a scheduler's address (tcp://host:8786), or local[:N] for N "
                   "processes here. IN_DIR and OUT_DIR must be paths every worker reaches. Needs "
                   "pip install 'ocr-restore[dask]'.")
@format_option
@dpi_option
@pipeline_options
@reading_option
def batch(in_dir, out_dir, masks, workers, dask_address, formats, dpi, detector, inpainter, lang, psm, ocr, weights,
          language_prior, reading, verbose):
    """Restore and read every image and PDF under IN_DIR, a PDF or multi-page TIFF page by page; rerun to resume.

    Page 1 of a/scan.pdf is written as OUT_DIR/a/scan.p0001.*, its mask read from MASKS/a/scan.p0001.png,
    and the whole text as OUT_DIR/a/scan.txt.
    """
    from .batch import Processes, run_batch

    if dask_address is None:
        engine = Processes(workers)
    elif workers != 1:
        raise click.UsageError("--workers is for this machine's processes; with --dask, the cluster has the workers")
    else:
        try:
            from .cluster import DaskCluster
        except ImportError as e:
            raise MissingDependencyError(f"--dask needs Dask distributed ({e}): pip install 'ocr-restore[dask]'") from None
        engine = DaskCluster(dask_address)
    options = _pipeline_options(detector, inpainter, lang, psm, weights, language_prior, reading,
                                _checked_engines(ocr, lang)[0])
    summary = run_batch(in_dir, out_dir, masks, engine, options, dpi=dpi, formats=formats)
    click.echo(f"{summary.done} done, {summary.skipped} already done, {summary.failed} failed; see {summary.results}")
    if summary.failed:
        sys.exit(1)


@main.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--gt", type=click.Path(exists=True, path_type=Path),
              help="name<TAB>text TSV or a folder of <stem>.gt.txt [default: sidecars beside the images].")
@click.option("-o", "--out", "report_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where report.csv, summary.csv, trust.csv, errors.csv, report.md and examples.png go.")
@click.option("--masks", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="True masks (same relative names); default: run the detector.")
@click.option("--clean", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Clean originals (same relative names), for the upper bound.")
@click.option("--recoverable", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The clean images less the characters wholly hidden (synth writes them): the best a restoration "
                   "reads without writing in letters it cannot see.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Parallel processes.")
@click.option("--ignore-case", is_flag=True, help="Score case-insensitively.")
@click.option("--alnum", "alnum_only", is_flag=True, help="Score letters and digits only (scene text).")
@click.option("--examples", type=click.IntRange(1), default=8, show_default=True, help="Rows in examples.png.")
@dpi_option
@pipeline_options
def bench(in_dir, gt, report_dir, masks, clean, recoverable, workers, ignore_case, alnum_only, examples,
          dpi, detector, inpainter, lang, psm, ocr, weights, language_prior, verbose):
    """OCR accuracy on occluded, restored, Telea, Navier-Stokes, recoverable and clean images (PDFs and multi-page
    TIFFs page by page: the first page's transcript is <stem>.p0001.gt.txt), with each --ocr engine.

    "confident" is the restored reading with the occluded one's more confident words; "language" is that with the
    language prior, as `run` reads by default.
    """
    from .evaluate.ocr import run_bench

    summary = run_bench(in_dir, report_dir, gt, masks, clean, recoverable, workers, ignore_case, alnum_only,
                        _pipeline_options(detector, inpainter, lang, psm, weights, language_prior), examples,
                        engines=_checked_engines(ocr, lang, several=True), dpi=dpi)
    click.echo(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    click.echo(f"report: {report_dir / 'report.md'}")


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["docs", "receipts", "scene"]), default="docs", show_default=True)
@click.option("--n", type=click.IntRange(1), default=None, help="Images to make [default: 100]. With --real, the first N by name (default all): the seed draws only the occluders.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--coverage", type=(float, float), default=(0.05, 0.3), show_default=True,
              help="Range of the occluded share of the text region.")
@click.option("--real", "real_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Occlude this folder of real images instead of rendering; evaluation only. Without a labels.tsv "
                   "(filename<TAB>text) there, Tesseract's reading of each clean image is the reference.")
@click.option("--held-out", is_flag=True, help="With --real: only the images a training folder holds out of training.")
@click.option("--shapes", default=",".join(SHAPE_KINDS), show_default=True, callback=_listed(SHAPE_KINDS),
              help="The occluders' kinds, comma-separated: a set of one kind measures what it costs.")
def synth(out_dir, kind, n, seed, coverage, real_dir, held_out, shapes):
    """Write a set: clean/, occluded/, mask/, recoverable/ (the clean images less the characters the occluders hid
    wholly), gt.tsv and *.gt.txt, ready for bench and batch."""
    from .data.synth import occlude_real_set, write_synth_set

    if real_dir is not None:
        truth = None
        if not (real_dir / "labels.tsv").is_file():
            from .evaluate.ocr import clean_readings

            truth = clean_readings(real_dir, held_out, n)
        occlude_real_set(real_dir, out_dir, seed, coverage, n, held_out, truth)
    else:
        write_synth_set(out_dir, kind, n or 100, seed, coverage, shapes)
    click.echo(f"wrote {out_dir}; benchmark it with: ocr-restore bench {out_dir / 'occluded'} --masks {out_dir / 'mask'} "
               f"--clean {out_dir / 'clean'} --recoverable {out_dir / 'recoverable'} -o {out_dir / 'report'}")


@main.group()
def train():
    """Train the models on on-the-fly synthetic data (CPU, or a GPU when there is one)."""


training_options = _options(
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ..."),
    click.option("--workers", type=click.IntRange(0), default=1, show_default=True, help="Data loader processes."),
    click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True),
    click.option("--config", default="default", show_default=True, help="Model size, a name in the model's CONFIGS (with --init, that file's; a detector's is narrowed to a slimmer one named)."),
    click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                 help="Fine-tune a weights file (e.g. one in models/) instead of starting from random weights."),
)


def scale_jitter_option(default: float):
    return click.option("--scale-jitter", type=click.FloatRange(0, 1), default=default, show_default=True,
                        help="Crops' text height varies within x exp(+-this): robustness to text-height estimates that far off.")


@train.command("inpainter")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/inpainter"),
              show_default=True, help="Run folder: last.pt (resumed automatically), log.csv, pconv.safetensors, snapshots/.")
@click.option("--steps-phase1", type=click.IntRange(0), default=16000, show_default=True, help="Steps at lr 2e-4, BatchNorm on.")
@click.option("--steps-phase2", type=click.IntRange(0), default=4000, show_default=True,
              help="Steps at lr 5e-5, encoder BatchNorm frozen.")
@click.option("--data", multiple=True, default=("synthetic",), show_default=True,
              help="A crop source, 'synthetic' or a folder of clean text images, as SOURCE[:SHARE] (repeatable); "
                   "one image in five of a folder is held out of training (data.dataset.held_out).")
@click.option("--perceptual", default="text_features", show_default=True,
              help="Features of the perceptual and style losses: text_features (the shipped net), crnn (the "
                   "pretrained recognizer's conv features; needs the train extra), the path of a torchvision "
                   "VGG-16 state dict, or none.")
@click.option("--style-weight", type=click.FloatRange(0), default=120.0, show_default=True,
              help="Weight of the style terms: the paper's 120 was chosen for ImageNet VGG-16 features.")
@click.option("--ctc-weight", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Weight of the CTC loss of the pretrained recognizer reading the composite of text lines against "
                   "their transcripts (0: off; else needs `pip install -e '.[train]'`).")
@click.option("--ctc-batch", type=click.IntRange(1), default=4, show_default=True,
              help="Text lines per step for the CTC term, besides the batch.")
@click.option("--ctc-data", multiple=True, default=("synthetic",), show_default=True,
              help="A source of text lines for the CTC term, 'synthetic' (rendered lines) or a folder with labels.tsv "
                   "(filename<TAB>text), as SOURCE[:SHARE] (repeatable); a folder's held-out images are never used.")
@click.option("--tight-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of rendered crops that are words or lines at their own extent, padded or cut to the crop.")
@click.option("--val-every", type=click.IntRange(1), default=1000, show_default=True,
              help="Steps between validations (each keeps a snapshot of the weights).")
@click.option("--ckpt-every", type=click.IntRange(1), default=500, show_default=True,
              help="Steps between checkpoints (last.pt); keep it under 10 minutes of training.")
@scale_jitter_option(0.1)
@click.option("--ship", is_flag=True, help="Copy the final weights to models/pconv.safetensors.")
@training_options
def train_inpainter_command(out_dir, steps_phase1, steps_phase2, data, perceptual, style_weight, ctc_weight, ctc_batch,
                            ctc_data, tight_share, val_every, ckpt_every, scale_jitter, ship, seed, device, workers,
                            batch_size, config, init):
    """Train the PConv U-Net in two phases, as in Liu et al. 2018."""
    from .nn.losses import LossWeights
    from .train.inpainter import InpainterTraining, train_inpainter
    from .train.loop import ship_weights

    cfg = InpainterTraining(config=config, data=data, perceptual=perceptual,
                            loss_weights=LossWeights(style=style_weight, ctc=ctc_weight),
                            batch_size=batch_size, scale_jitter=scale_jitter, tight_share=tight_share, seed=seed,
                            init=str(init or ""), ctc_batch=ctc_batch, ctc_data=ctc_data,
                            steps_phase1=steps_phase1, steps_phase2=steps_phase2,
                            val_every=val_every, ckpt_every=ckpt_every, device=device, num_workers=workers)
    train_inpainter(out_dir, cfg)
    if ship:
        ship_weights(out_dir / "pconv.safetensors", "pconv.safetensors")


@train.command("detector")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/detector"),
              show_default=True, help="Run folder: last.pt (resumed automatically), log.csv, detector.safetensors.")
@click.option("--steps", type=click.IntRange(1), default=6000, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--clean-share", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Share of training crops left unoccluded, so that text alone is not flagged.")
@scale_jitter_option(0.7)
@click.option("--tight-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of training crops that are words, lines or paragraphs at their own extent, padded or cut to the crop.")
@click.option("--data", multiple=True, default=("synthetic",), show_default=True,
              help="A crop source, 'synthetic' or a folder of clean text images, as SOURCE[:SHARE] (repeatable).")
@click.option("--ship", is_flag=True, help="Copy the final weights to models/detector.safetensors.")
@training_options
def train_detector_command(out_dir, steps, lr, clean_share, scale_jitter, tight_share, data, ship, seed, device, workers,
                           batch_size, config, init):
    """Train the occluder segmentation U-Net."""
    import os

    import torch

    from .train.detector import DetectorTraining, train_detector
    from .train.loop import ship_weights

    if "OMP_NUM_THREADS" not in os.environ:
        # its step is light beside the making of its crops: on 2 cores with one loader process, the model on one
        # thread ran 1.3 steps/s and on both 1.0, contending with the loader (the inpainter's heavier step is the
        # faster on both: docs/experiments.md)
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) - workers))
    cfg = DetectorTraining(config=config, data=data, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                           clean_share=clean_share, scale_jitter=scale_jitter, tight_share=tight_share,
                           init=str(init or ""), device=device, num_workers=workers)
    weights = train_detector(out_dir, cfg)
    if ship:
        ship_weights(weights, "detector.safetensors")


@train.command("features")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weights file [default: models/text_features.safetensors].")
@click.option("--steps", type=click.IntRange(1), default=4000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_features_command(out, steps, seed):
    """Train the text feature network that the perceptual and style losses use."""
    from .train.features import DEFAULT_TEXT_FEATURES, train_text_features

    train_text_features(out or DEFAULT_TEXT_FEATURES, steps, seed=seed)


@main.command("bench-detector")
@click.option("-o", "--out", "report_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where detector.csv, sets.csv, real.csv and detector.md go.")
@click.option("--detector", type=click.Choice(DETECTORS), default="model", show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Detector weights to use instead of the shipped ones (a checkpoint's detector.safetensors).")
@click.option("--n", type=click.IntRange(0), default=100, show_default=True,
              help="Rendered images per kind (docs, receipts, scene); 0: none.")
@click.option("--seed", type=int, default=2000, show_default=True, help="Fixed evaluation seed (training never draws it).")
@click.option("--set", "sets", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="An occluded set as `synth` writes it (occluded/, clean/): the masks against what the occluders "
                   "changed, and the pixels flagged on its clean images (repeatable).")
@click.option("--clean-real", "real_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder of clean real text images: report the pixels flagged on them (repeatable).")
@click.option("--page-time/--no-page-time", default=True, show_default=True,
              help="Time the detector on an A4 page at 300 dpi (on an otherwise idle machine).")
def bench_detector(report_dir, detector, weights, n, seed, sets, real_dirs, page_time):
    """Occluder-mask quality near text (IoU, recall, precision) per kind, shape and colour, on occluded sets, and
    ms per 300-dpi page."""
    from .detect import build_detector
    from .evaluate.detector import write_report

    if weights is not None and detector != "model":
        raise click.UsageError("--weights are the model detector's; drop them or use --detector model")
    click.echo(write_report(report_dir, build_detector(detector, weights), n, seed, real_dirs, sets, page_time))


@main.command("bench-speed")
@click.option("-o", "--out", "report_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where speed.csv and speed.md go.")
@click.option("--repeats", type=click.IntRange(1), default=5, show_default=True, help="Runs per stage; the median is reported.")
@pipeline_options
def bench_speed(report_dir, repeats, detector, inpainter, lang, psm, ocr, weights, language_prior, verbose):
    """Milliseconds per stage (detector, inpainter on the true mask, whole pipeline) on an A4 page at 300 dpi with
    ten occluders and on a text line, as the pipeline is configured. Time it on an otherwise idle machine."""
    from .evaluate.speed import write_report
    from .pipeline import Pipeline

    pipeline = Pipeline(**_pipeline_options(detector, inpainter, lang, psm, weights, language_prior,
                                            ocr=_checked_engines(ocr, lang)[0]))
    click.echo(write_report(report_dir, pipeline, repeats))
