"""data/checksums.md5 matches the released annotation files, and data/prepare.sh checks them."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DATA = REPO_ROOT / "data"
DATASETS = ("clotho_moment", "unav100-subset", "tut2017", "castella")
# The checksums the release is known by (Lighthouse's data/ files).
RELEASED = {
    "castella/castella_val_release.jsonl": "7109907e4d1300eb84e8f447c5729837",
    "castella/castella_test_release.jsonl": "fa8e3be93e23452a9474d511b1bd2409",
    "clotho_moment/clotho_moment_val_release.jsonl": "cd3707e3964ce5294ad10ad35bda2837",
    "tut2017/tut2017_test_release.jsonl": "574595277830ad80c2088f666727310b",
    "unav100-subset/unav100-subset_test_release.jsonl": "fae3c2ebc587288fa0eef3bfe26a2e12",
}


def recorded() -> dict[str, str]:
    lines = (DATA / "checksums.md5").read_text().splitlines()
    return {name: md5 for md5, name in (line.split() for line in lines if line.strip())}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_checksum_file_holds_the_released_checksums():
    assert RELEASED.items() <= recorded().items()
    for name in recorded():
        assert name.split("/")[0] in DATASETS, name


def test_shared_annotation_files_match_the_checksums(annotations_dir):
    if not annotations_dir.is_dir():
        pytest.skip(f"{annotations_dir}: no shared annotation files")
    checked = 0
    for name, expected in recorded().items():
        path = annotations_dir / Path(name).name
        if path.is_file():
            assert md5(path) == expected, name
            checked += 1
    assert checked >= len(RELEASED)


def test_every_dataset_folder_has_its_prepare_script():
    for dataset in DATASETS:
        script = DATA / dataset / "prepare.sh"
        assert script.is_file(), script
        assert dataset in script.read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_prepare_copies_and_verifies(tmp_path, annotations_dir):
    if not annotations_dir.is_dir():
        pytest.skip(f"{annotations_dir}: no shared annotation files")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "prepare.sh", data)
    shutil.copy(DATA / "checksums.md5", data)
    shutil.copytree(DATA / "tut2017", data / "tut2017", ignore=shutil.ignore_patterns("*.jsonl"))

    def prepare(*args: str) -> subprocess.CompletedProcess:
        script = data / "tut2017" / "prepare.sh"
        return subprocess.run(["bash", str(script), *args], capture_output=True, text=True)

    missing = prepare()
    assert missing.returncode == 1 and "missing" in missing.stdout
    assert "zenodo.org/records/13806234" in missing.stdout
    ok = prepare("--from", str(annotations_dir))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok        data/tut2017/tut2017_test_release.jsonl" in ok.stdout
    (data / "tut2017" / "tut2017_test_release.jsonl").write_text("{}\n")
    bad = prepare()
    assert bad.returncode == 2 and "MISMATCH" in bad.stdout
