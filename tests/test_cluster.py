"""`batch --dask`: a real Dask LocalCluster of 2 processes of 1 thread, against the local batch's outputs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from PIL import Image

from ocr_restore.batch import Processes, run_batch

from .conftest import render_line, stroke_over

distributed = pytest.importorskip("distributed")
from dask.config import set as dask_config  # noqa: E402
from ocr_restore.cluster import DaskCluster  # noqa: E402  (needs distributed)

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed")

OPTIONS = {"detector": "classical", "inpainter": "telea"}
CLASSICAL = ["--detector", "classical", "--inpainter", "telea"]
TIMES = [f"{stage}_s" for stage in ("read", "detect", "inpaint", "ocr")]
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    """16 occluded lines, two in a subfolder, and one broken file."""
    root = tmp_path_factory.mktemp("lines") / "in"
    for i, word in enumerate(WORDS):
        path = root / ("sub" if i % 8 == 7 else "") / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(stroke_over(render_line(f"{word} {i} total {i * 3}.50"))[0]).save(path)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def local_outputs(lines, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    run_batch(lines, out, engine=Processes(1), pipeline_options=OPTIONS, on_error=lambda message: None)
    return out


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def assert_same_outputs(out, reference):
    """Every output byte-identical, but for the seconds each stage took."""
    names = sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == names
    for name in names:
        ours, theirs = out / name, reference / name
        if name.endswith(".json"):
            ours, theirs = json.loads(ours.read_text()), json.loads(theirs.read_text())
            assert {**ours, "seconds": None} == {**theirs, "seconds": None}, name
        elif name == "results.csv":
            ours, theirs = pd.read_csv(ours).drop(columns=TIMES), pd.read_csv(theirs).drop(columns=TIMES)
            pd.testing.assert_frame_equal(ours, theirs)
        else:
            assert ours.read_bytes() == theirs.read_bytes(), name


def test_local_cluster_writes_what_the_local_batch_writes(lines, local_outputs, tmp_path):
    from .test_cli import invoke, tree_digest

    before = tree_digest(lines)
    result = invoke("batch", lines, "-o", tmp_path / "out", "--dask", "local:2", *CLASSICAL)
    assert result.exit_code == 1  # the broken file
    assert "16 done, 0 already done, 1 failed" in result.stdout
    assert "Dask dashboard at http://" in result.stdout
    assert_same_outputs(tmp_path / "out", local_outputs)
    table = pd.read_csv(tmp_path / "out" / "results.csv").set_index("file")
    assert table.at["broken.png", "status"] == "error" and "broken.png: not an image" in table.at["broken.png", "error"]
    assert tree_digest(lines) == before  # the input folder is only read


def test_a_worker_killed_mid_run_costs_nothing(lines, local_outputs, cluster, tmp_path):
    out = tmp_path / "out"
    with distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
    batch = threading.Thread(target=run_batch, args=(lines, out), daemon=True,
                             kwargs={"engine": DaskCluster(cluster.scheduler_address), "pipeline_options": OPTIONS,
                                     "on_error": lambda message: None})
    batch.start()
    wait_for(lambda: len(list(out.rglob("*.json"))) >= 2)
    os.kill(pids[0], signal.SIGKILL)  # with tasks queued on both workers, one is running there now
    batch.join(timeout=300)
    assert not batch.is_alive()
    assert_same_outputs(out, local_outputs)
    with distributed.Client(cluster) as client:
        assert pids[0] not in client.run(os.getpid).values()  # it died, and its nanny started another


def test_a_killed_client_resumes_to_the_same_outputs(lines, local_outputs, cluster, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "ocr_restore", "batch", str(lines), "-o", str(out), "--dask",
               cluster.scheduler_address, *CLASSICAL]
    client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: rows_in(out / "results.csv") >= 3)
    client.kill()
    client.wait()
    killed = pd.read_csv(out / "results.csv")
    done = {p.relative_to(out).with_suffix(".png").as_posix() for p in out.rglob("*.json")}
    assert 3 <= len(killed) < 17 and set(killed["file"]) <= done | {"broken.png"}  # its rows so far, as written

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr
    assert "already done" in rerun.stdout and "1 failed" in rerun.stdout
    assert_same_outputs(out, local_outputs)


def test_a_bad_address_is_a_clear_error():
    with pytest.raises(Exception, match="local:N with N processes"):
        DaskCluster("local:many")


def rows_in(results_csv):
    try:
        return len(pd.read_csv(results_csv))
    except (OSError, ValueError):  # not there yet, or a row half appended
        return 0


def wait_for(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def crash_on_broken(task):
    """A task that takes its worker down with it on one file, as a native crash would."""
    if task.path.name == "broken.png":
        os._exit(1)
    return {"file": task.relative, "status": "ok"}


def test_a_file_that_kills_its_worker_is_one_error_row(tmp_path):
    from ocr_restore.batch import _Task

    tasks = [_Task(tmp_path / name, name, tmp_path / "out" / name, None) for name in ("a.png", "broken.png", "b.png")]
    with (dask_config(**{"distributed.scheduler.allowed-failures": 0}),
          distributed.LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster):
        rows = list(DaskCluster(cluster.scheduler_address).map(crash_on_broken, tasks, lambda options: None, {}))
    assert sorted(row["file"] for row in rows) == ["a.png", "b.png", "broken.png"]
    broken = next(row for row in rows if row["file"] == "broken.png")
    assert broken["status"] == "error" and "broken.png: its worker died each time it ran" in broken["error"]
