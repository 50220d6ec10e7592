"""Fault injection on tiny data: what a long search meets, and what it keeps.

SIGKILL at random moments over a loop, a full disk (a small tmpfs, as root), journals cut at
every byte offset of their last two records, a PostgreSQL restart under two workers and a
server that stays away, corrupt and concurrently built caches, a write error and Ctrl-C. Each
assertion message says what was tried and what survived.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import bench_tiny_plugin  # noqa: F401
import numpy as np
import optuna
import pytest
from conftest import make_folder, make_npz
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState
from pg import postgres_server  # noqa: F401  (fixture)
from runs import TINY, bench, load_study, only_journal, records

from bench.errors import BenchError
from bench.files import WriteError, write_guard
from bench.search.journal import complete_prefix

pytestmark = pytest.mark.faults
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _run_args(npz: str, out: Path) -> list[str]:
    return ["run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1", *TINY]


def _plain(journal: Path):
    """The study read by Optuna itself (no repair): what a dashboard would see."""
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=journal.stem, storage=storage)


def _finished(study) -> dict[int, tuple]:
    return {t.number: (t.state, t.value) for t in study.get_trials(states=FINISHED)}


def _wait_for_finished(journal_dir: Path, proc, n: int, timeout: float = 90) -> dict:
    """Poll the study until ``n`` trials finished (or the process ended)."""
    give_up, done = time.monotonic() + timeout, {}
    while len(done) < n and time.monotonic() < give_up and proc.poll() is None:
        time.sleep(0.3)
        try:
            done = _finished(_plain(only_journal(journal_dir)))
        except (ValueError, KeyError):  # no journal or no study in it yet
            continue
    return done


def _partial_files(out: Path) -> list[str]:
    """Files in ``out`` that are not whole: JSON that does not parse, an .npy that does not
    load, weights whose sha256 is not their metadata's."""
    bad = []
    for path in out.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".npy":
                np.load(path)
            elif path.suffix == ".safetensors":
                meta = json.loads(path.with_suffix(".json").read_text())
                assert hashlib.sha256(path.read_bytes()).hexdigest() == meta["sha256"]
        except Exception as exc:  # noqa: BLE001 (any failure to read is the finding)
            bad.append(f"{path.relative_to(out)}: {type(exc).__name__}")
    return bad


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished ``bench run`` of three trials: (its arguments, its out folder)."""
    root = tmp_path_factory.mktemp("finished")
    npz = "npz:" + str(make_npz(root / "data" / "tiny.npz", counts=(96, 32, 32)))
    args = [*_run_args(npz, root / "out"), "--budget", "1m", "--n-trials", "3"]
    proc = bench(*args)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    return args, root / "out"


@pytest.mark.slow
def test_a_journal_cut_at_any_byte_of_its_last_two_records_keeps_every_whole_one(
    finished_run, tmp_path, capsys
) -> None:
    _, out = finished_run
    original = only_journal(out)
    data = original.read_bytes()
    lines = data.splitlines(keepends=True)
    start, end = _last_trial_records(data)
    reference: dict[int, list] = {}
    cut = tmp_path / original.name
    for offset in range(start, end):
        cut.write_bytes(data[:offset])
        whole = data[:offset].count(b"\n") + (data[offset : offset + 1] == b"\n")
        study = load_study(str(cut), original.stem)  # bench's opening repairs it
        said = capsys.readouterr().err
        kept = cut.read_bytes()
        assert kept == b"".join(lines[:whole]), (
            f"cut at byte {offset} of {len(data)}: the repaired file is not the {whole} whole "
            f"records before the cut ({len(kept)} bytes kept)"
        )
        if whole not in reference:
            ref = tmp_path / "ref" / original.name
            ref.parent.mkdir(exist_ok=True)
            ref.write_bytes(b"".join(lines[:whole]))
            reference[whole] = [(t.number, t.state, t.value) for t in _plain(ref).trials]
        got = [(t.number, t.state, t.value) for t in study.trials]
        assert got == reference[whole], f"cut at byte {offset}: trials differ from the prefix"
        if data[:offset].endswith(b"\n"):
            assert "repaired" not in said, f"cut at a record boundary {offset} was 'repaired'"
        else:
            assert f"kept {whole} complete records" in said, f"cut at {offset}: said {said!r}"
        for copy in tmp_path.glob(f"{original.name}.damaged-*"):
            assert copy.read_bytes() == data[:offset], f"cut at {offset}: the copy differs"
            copy.unlink()
    # a repaired study takes new records and reads back with them
    cut.write_bytes(data[:-5])
    study = load_study(str(cut), original.stem)
    study.enqueue_trial({"tiny_mlp.width": 8})
    assert len(load_study(str(cut), original.stem).trials) == len(study.trials)
    assert complete_prefix(cut.read_bytes()).n_bytes == cut.stat().st_size
    print(f"FAULT cut journal: {end - start} offsets over the last 2 trial records of "
          f"{len(lines)}; every one opened with {sorted(reference)} whole records kept")


def _last_trial_records(data: bytes) -> tuple[int, int]:
    """Byte range of a journal's last two trial records (a finished run's journal ends with
    study attributes: its time and the finished mark, written after the last trial)."""
    offsets, pos = [], 0
    for line in data.splitlines(keepends=True):
        if b'"trial_id"' in line:
            offsets.append((pos, pos + len(line)))
        pos += len(line)
    return offsets[-2][0], offsets[-1][1]


@pytest.mark.slow
def test_a_cut_journal_is_repaired_and_the_same_command_resumes(finished_run, tmp_path) -> None:
    args, src = finished_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    args = [a if a != str(src) else str(out) for a in args]
    journal = only_journal(out)
    data = journal.read_bytes()
    journal.write_bytes(data[: _last_trial_records(data)[1] - 37])  # into the last trial record
    before = _finished(_plain(journal))
    proc = bench(*args)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, f"rerun after cutting 37 bytes: {stderr}"
    repaired = [line for line in stderr.splitlines() if "repaired study file" in line]
    assert len(repaired) == 1, stderr
    assert list(journal.parent.glob(f"{journal.name}.damaged-*")), "no damaged copy kept"
    after = _finished(_plain(journal))
    lost = {n for n, v in before.items() if after.get(n) != v}
    assert not lost, f"{len(before)} finished before the cut; lost {sorted(lost)}"
    study = _plain(journal)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    newest = max(records(out), key=lambda r: r["run_id"])
    assert newest["n_trials"] == len(study.trials) > len(before)
    left = sorted(p.name for p in journal.parent.glob("*.damaged-*"))
    print(f"FAULT 37 bytes cut: {len(before)} finished before, {len(after)} after; left {left}")


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("a small full filesystem needs root here (mount -t tmpfs)")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: closing has nothing to flush
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_one_line_and_the_same_command_resumes(
    npz, tmp_path
) -> None:
    small = tmp_path / "small"
    _mount_tmpfs(small, "3m")
    try:
        out = small / "out"
        args = [*_run_args(npz, out), "--budget", "2m"]
        proc = bench(*args)
        before_fill = _wait_for_finished(out, proc, 2)
        assert len(before_fill) >= 2, "no two trials finished before the disk was filled"
        filler = _fill(small)
        _, stderr = proc.communicate(timeout=180)
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, stderr
        assert "no space left on device" in errors[0] and str(small) in errors[0], errors
        assert "free space and run the same command again: the study resumes" in errors[0]
        assert "Traceback" not in stderr, stderr
        assert not records(out), "a record was written on a full disk"
        assert not _partial_files(out) and not list(out.rglob(".*.tmp")), _partial_files(out)
        before = _finished(_plain(only_journal(out)))  # loadable by Optuna itself, unrepaired
        assert len(before) >= len(before_fill)
        filler.unlink()
        again = bench(*args, "--n-trials", "2")  # the same command: its study resumes
        _, stderr = again.communicate(timeout=180)
        assert again.returncode == 0, stderr
        study = _plain(only_journal(out))
        after = _finished(study)
        lost = {n for n, v in before.items() if after.get(n) != v}
        assert not lost, f"{len(before)} trials finished before the disk filled; lost {lost}"
        (record,) = records(out)
        assert record["n_trials"] == len(study.trials) >= len(before) + 2
        left = sorted(str(p.relative_to(out)) for p in out.rglob("*damaged*"))
        print(f"FAULT full disk: {len(before)} finished before, {len(after)} after; "
              f"error line {errors[0]!r}; left {left}")
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_no_finished_trial(npz, tmp_path) -> None:
    rng = random.Random(15)
    out = tmp_path / "out"
    # the killed parts' time counts against the budget of the run that resumes them
    args = [*_run_args(npz, out), "--budget", "2m"]
    kept: dict[int, tuple] = {}
    for kill in range(5):
        delay = rng.uniform(3.0, 14.0)
        proc = bench(*args, start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        now = _finished(load_study(str(only_journal(out)), only_journal(out).stem))
        lost = {n for n, v in kept.items() if now.get(n) != v}
        assert not lost, f"kill {kill} after {delay:.1f}s: lost finished trials {sorted(lost)}"
        assert not _partial_files(out), f"kill {kill} after {delay:.1f}s: {_partial_files(out)}"
        kept = now
    proc = bench(*args, "--n-trials", "2")
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    assert set(kept) <= set(_finished(study)), f"{len(kept)} kept over 5 kills"
    assert not study.get_trials(states=(TrialState.RUNNING,)), "a killed trial is left RUNNING"
    newest = max(records(out), key=lambda r: r["run_id"])
    assert newest["n_trials"] == len(study.trials)
    tmp = sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))
    print(f"FAULT 5 SIGKILLs: {len(kept)} finished before the last run, "
          f"{len(_finished(study))} after; temporary files left {tmp}")


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgresql_restart_under_two_workers_loses_nothing(
    npz,
    tmp_path,
    postgres_server,  # noqa: F811
) -> None:
    url, out = postgres_server.url, tmp_path / "out"
    common = ["--dataset", npz, "--out", str(out), "--quiet", "--storage", url,
              "--study", "shared", "--budget", "90s", "--n-trials", "6", *TINY]  # fmt: skip
    procs = [bench("search", *common), bench("search", *common),
             bench("run", *common, "--seeds", "1")]  # fmt: skip
    give_up, before = time.monotonic() + 90, {}
    while len(before) < 3 and time.monotonic() < give_up:
        time.sleep(0.3)
        try:
            before = _finished(load_study(url, "shared"))
        except KeyError:
            continue
    postgres_server.ctl("restart")
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, f"after a restart with {len(before)} finished: {stderr}"
    assert any("database connection lost" in e for _, e in outputs), "no worker saw the restart"
    study = load_study(url, "shared")
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers))), f"duplicate trial numbers: {numbers}"
    assert not study.get_trials(states=(TrialState.RUNNING,)), "a trial is left RUNNING"
    after = _finished(study)
    assert all(after.get(n) == v for n, v in before.items()), f"{len(before)} before the restart"
    (record,) = records(out)
    assert len(before) <= record["n_trials"] <= len(study.trials)
    counted = [record[f"n_{k}"] for k in ("complete", "pruned", "failed", "unfinished")]
    assert sum(counted) == record["n_trials"], counted  # as of the record's one read
    retries = sum("retry_of" in t.user_attrs for t in study.trials)  # each was waiting a while
    assert record["n_unfinished"] <= 2 + retries, counted  # the two workers' running trials
    failed = [t.user_attrs.get("fail_reason") for t in study.get_trials(states=(TrialState.FAIL,))]
    print(f"FAULT pg restart: {len(before)} finished before, {len(after)} after, "
          f"{len(study.trials)} trials, record n_trials {record['n_trials']}; failed: {failed}")


@pytest.mark.postgres
def test_a_database_that_stays_away_is_one_line(postgres_server, monkeypatch) -> None:  # noqa: F811
    from bench.search.storage import RECONNECT_ENV, DatabaseGone, open_storage

    storage = open_storage(postgres_server.url, default_journal=Path("/nonexistent"))
    optuna.create_study(storage=storage, study_name="away")
    monkeypatch.setenv(RECONNECT_ENV, "3")
    postgres_server.ctl("stop")
    try:
        t0 = time.monotonic()
        with pytest.raises(DatabaseGone) as caught:
            storage.get_all_studies()
        waited = time.monotonic() - t0
    finally:
        postgres_server.ctl("start")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"lost the database {postgres_server.url}")
    assert "run the same command again: the study resumes" in message
    assert 2.0 <= waited < 30, f"gave up after {waited:.1f}s, not about 3s"
    assert [s.study_name for s in storage.get_all_studies()] == ["away"]  # back again


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_corrupt_folder_cache_is_rebuilt_with_one_line(tmp_path, monkeypatch, capsys,
                                                         damage) -> None:  # fmt: skip
    from bench.data.load import load_splits

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    root = make_folder(tmp_path / "images", {"a": 20, "b": 20})
    first = load_splits(f"folder:{root}")
    (cache,) = (tmp_path / "cache" / "folders").glob("*.npz")
    blob = bytearray(cache.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    cache.write_bytes(bytes(blob))
    capsys.readouterr()
    second = load_splits(f"folder:{root}")
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith(f"warning: cache file {cache} is corrupt"), said
    assert said[0].endswith("rebuilding it")
    assert np.array_equal(second.train.images, first.train.images)
    load_splits(f"folder:{root}")
    assert not capsys.readouterr().err, "the rebuilt cache is not whole"


def test_a_corrupt_dcgan_cache_is_retrained_with_one_line(tiny_npz, tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    from bench.augment.registry import build_augmentation
    from bench.data.load import load_splits

    tv = load_splits(tiny_npz()).train_val()

    def build():
        return build_augmentation("dcgan", data=tv, img_size=tv.data_size, seed=0,
                                  device="cpu", cache_dir=tmp_path, dcgan_steps=4,
                                  dcgan_width=8)  # fmt: skip

    build()
    (cache,) = tmp_path.glob("*.pt")
    blob = bytearray(cache.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # torch.load would read these weights without a word
    cache.write_bytes(bytes(blob))
    capsys.readouterr()
    again = build()
    said = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert said == [f"warning: cache file {cache} is corrupt (its sha256 does not match); "
                    "rebuilding it"], said  # fmt: skip
    assert again.info["cache"] == "miss" and again.info["dcgan_steps_done"] == 4
    assert build().info["cache"] == "hit"


def test_a_truncated_unpacked_array_is_unpacked_again(tmp_path, monkeypatch, capsys) -> None:
    from bench.data.medmnist import mmap_arrays

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    npz = make_npz(tmp_path / "tiny.npz")
    whole = {k: np.array(v) for k, v in mmap_arrays(npz).items()}
    unpacked = next((tmp_path / "cache" / "npy").rglob("train_images.npy"))
    unpacked.write_bytes(unpacked.read_bytes()[:-100])
    capsys.readouterr()
    again = mmap_arrays(npz)
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and f"cache file {unpacked} is" in said[0], said
    assert all(np.array_equal(again[k], v) for k, v in whole.items())


_FILL_FOLDER = """
import sys
from bench.data.load import load_splits
splits = load_splits("folder:" + sys.argv[1])
print(len(splits.train))
"""


def test_two_processes_filling_one_cache_leave_one_whole_copy(tmp_path) -> None:
    root = make_folder(tmp_path / "images", {"a": 150, "b": 150}, size=(32, 32))
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", _FILL_FOLDER, str(root)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    folder = tmp_path / "cache" / "folders"
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 1 and left[0].endswith(".npz"), left
    with np.load(next(folder.glob("*.npz"))) as z:
        assert len(z["images"]) == 300  # reading it whole checks every CRC
    assert outputs[0][0] == outputs[1][0]


_WRITE_CHECKED = """
import sys
from pathlib import Path
from bench.data.cache import write_checked
for i in range(40):
    write_checked(Path(sys.argv[1]), sys.argv[2].encode() * (100000 + i))
"""


def test_concurrent_checked_writes_leave_one_whole_payload(tmp_path) -> None:
    from bench.data.cache import read_checked

    path = tmp_path / "gen.pt"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITE_CHECKED, str(path), tag])
             for tag in "ab"]  # fmt: skip
    assert all(p.wait(timeout=120) == 0 for p in procs)
    payload = read_checked(path)
    assert payload is not None and len(set(payload)) == 1 and len(payload) == 100039
    assert [p.name for p in tmp_path.iterdir()] == ["gen.pt"]


def test_a_write_error_is_one_line_naming_the_device(tmp_path) -> None:
    with pytest.raises(WriteError) as caught, write_guard(tmp_path, resumes=True):
        try:  # /dev/full: every write is "no space left on device", as on a full disk
            with open("/dev/full", "wb") as f:
                f.write(b"x" * 100000)
        except OSError:
            raise AssertionError("Should not reach.")  # noqa: B904 (what Optuna raises over it)
    message = str(caught.value)
    assert message.startswith(f"no space left on device writing under {tmp_path} ("), message
    assert " mounted at /" in message and " free of " in message, message
    assert message.endswith("free space and run the same command again: the study resumes")
    assert isinstance(caught.value, BenchError) and "\n" not in message


@pytest.mark.slow
def test_ctrl_c_ends_in_one_line_that_says_the_study_resumes(npz, tmp_path) -> None:
    out = tmp_path / "out"
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = bench(*_run_args(npz, out), "--budget", "1m", preexec_fn=restore)  # a background
    done = _wait_for_finished(out, proc, 1)  # job of a script inherits SIGINT ignored
    assert done, "no trial finished before the interrupt"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == (
        "error: interrupted; run the same command again: the study resumes"
    )
    assert set(done) <= set(_finished(_plain(only_journal(out))))
