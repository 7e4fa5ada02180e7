"""RunDir: the run's files, the refusal of foreign folders, the fingerprint of a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mgno.errors import InputError
from mgno.train.run_dir import LOCK, RUN_FILES, RunDir, run_fingerprint

OLD_RUN = Path(__file__).parent / "data" / "old_run"


def test_check_new_takes_only_an_empty_folder(tmp_path):
    RunDir(tmp_path / "absent").check_new()
    for name in RUN_FILES:
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        RunDir(folder).check_new()  # empty: takes a run
        (folder / LOCK).write_text("")
        RunDir(folder).check_new()  # its own lock file does not count
        (folder / name).write_text("x")
        with pytest.raises(InputError, match=str(folder)):
            RunDir(folder).check_new()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="notes.txt, which mgno train did not write"):
        RunDir(other).check_new()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        RunDir(tmp_path / "file").check_new()


def test_fingerprint_follows_the_numbers_not_the_device(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    cfg = RunDir(run).read_config()
    base = RunDir(run).fingerprint()
    assert base == run_fingerprint(cfg)
    for section, key, value in [("train", "device", "cuda"), ("train", "eval_batch_size", 64)]:
        changed = json.loads(json.dumps(cfg))
        changed[section][key] = value
        assert run_fingerprint(changed) == base, key
    for section, key, value in [("train", "lr", 0.5), ("train", "epochs", 9),
                                ("train", "seed", 7), ("model", "channels", 3),
                                ("data", "n_samples", 5), ("data", "path", "other.h5")]:
        changed = json.loads(json.dumps(cfg))
        changed[section][key] = value
        assert run_fingerprint(changed) != base, key


def test_read_config_names_the_file_and_field(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    for text, field in [("[]", "JSON list"), ('{"model": {}, "train": {}}', "'data'"),
                        ('{"model": {}, "train": 3, "data": {}}', "'train'"),
                        ("\xff", "UTF-8")]:
        (run / "config.json").write_bytes(text.encode("latin-1"))
        with pytest.raises(InputError, match=field) as err:
            RunDir(run).read_config()
        assert str(run / "config.json") in str(err.value)
