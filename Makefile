# The two commands of the README: `make demo` and `make test`. Both set up what is missing first.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 \
	fonts-urw-base35 fonts-freefont-ttf fonts-noto-core fortunes fortunes-min wamerican
STAMP := .make

.PHONY: setup demo test bench train-inpainter clean

setup: $(STAMP)/apt $(STAMP)/pip

# apt-get only runs when something is missing, so a set-up machine costs nothing.
$(STAMP)/apt:
	@mkdir -p $(STAMP)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@touch $@

# torch is pinned to the CPU wheel (2.13.0) in pyproject.toml; an unpinned torch pulls GBs of CUDA.
$(STAMP)/pip: pyproject.toml
	@mkdir -p $(STAMP)
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[test,train]'
	@touch $@

demo: setup
	ocr-restore samples/*.png -o out/demo
	ocr-restore bench samples --masks samples/masks --clean samples/clean -o out/demo-bench

test: setup
	$(PYTHON) -m pytest -q

# The standard benchmark: fixed-seed evaluation sets the models never trained on (see models/README.md).
# It measures the PConv inpainter against OpenCV's with the true masks, the detector, and then the default
# pipeline end to end (detector, `auto` inpainter, the confident reading), against the same inpainters.
REAL := ../shared/data/real
# recoverable/ (the clean images less the characters wholly hidden) came in 2026-11-29: an older set is made anew
eval/docs/recoverable:
	ocr-restore synth eval/docs --kind docs --n 300 --seed 1000
eval/sroie/recoverable:
	ocr-restore synth eval/sroie --real $(REAL)/sroie_lines_dev --n 300 --seed 1000
eval/iiit5k/recoverable:
	ocr-restore synth eval/iiit5k --real $(REAL)/iiit5k_test --n 300 --seed 1000

# a set's reference images: the clean ones and the recoverable ones
REFERENCES = --clean eval/$(1)/clean --recoverable eval/$(1)/recoverable

bench: setup eval/docs/recoverable eval/sroie/recoverable eval/iiit5k/recoverable
	ocr-restore bench eval/docs/occluded --masks eval/docs/mask $(call REFERENCES,docs) -o eval/docs/report --workers 2 --inpainter pconv
	ocr-restore bench eval/sroie/occluded --masks eval/sroie/mask $(call REFERENCES,sroie) -o eval/sroie/report --workers 2 --ignore-case --inpainter pconv
	ocr-restore bench eval/iiit5k/occluded --masks eval/iiit5k/mask $(call REFERENCES,iiit5k) -o eval/iiit5k/report --workers 2 --ignore-case --alnum --inpainter pconv
	ocr-restore bench-detector -o eval/detector --n 100 --seed 2000 --clean-real eval/sroie/clean --clean-real eval/iiit5k/clean
	ocr-restore bench eval/docs/occluded $(call REFERENCES,docs) -o eval/docs/report-default --workers 2
	ocr-restore bench eval/sroie/occluded $(call REFERENCES,sroie) -o eval/sroie/report-default --workers 2 --ignore-case
	ocr-restore bench eval/iiit5k/occluded $(call REFERENCES,iiit5k) -o eval/iiit5k/report-default --workers 2 --ignore-case --alnum
	ocr-restore bench eval/docs/clean -o eval/docs/report-clean --workers 2
	ocr-restore bench eval/sroie/clean -o eval/sroie/report-clean --workers 2 --ignore-case
	ocr-restore bench eval/iiit5k/clean -o eval/iiit5k/report-clean --workers 2 --ignore-case --alnum

# The inpainter's training campaign (run 7 in the model card): renders and real clean text, resumed from
# runs/pconv-glyph7/last.pt. On a GPU: make train-inpainter DEVICE=cuda WORKERS=12 (the same run).
TRAIN_REAL := ../shared/data/train_real
DEVICE ?= auto
WORKERS ?= 1
train-inpainter: setup
	ocr-restore train inpainter -o runs/pconv-glyph7 --config default --device $(DEVICE) --workers $(WORKERS) \
		--data synthetic:0.5 --data $(TRAIN_REAL)/sroie_lines_train:0.2 --data $(TRAIN_REAL)/iiit5k_train:0.15 \
		--data $(TRAIN_REAL)/doc_pages:0.15 --tight-share 0.3 --scale-jitter 0.4 --style-weight 1.2 --seed 70 \
		--steps-phase1 60000 --steps-phase2 15000 --val-every 1000 --ckpt-every 250 --batch-size 16

clean:
	rm -rf out $(STAMP) .pytest_cache
