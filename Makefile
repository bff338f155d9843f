# The two commands of the README: `make demo` and `make test`. Both set up what is missing first.
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 \
	fonts-urw-base35 fonts-freefont-ttf fonts-noto-core fortunes fortunes-min wamerican
STAMP := .make

.PHONY: setup demo test bench clean

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

clean:
	rm -rf out $(STAMP) .pytest_cache
