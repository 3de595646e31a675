import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def lighthouse_fixtures_dir() -> Path:
    """Folder of Lighthouse parity fixtures; every fixture found there is tested."""
    default = SHARED / "fixtures" / "lighthouse"
    return Path(os.environ.get("LIGHTHOUSE_AUDIO_FIXTURES", default))


def fixture_files(pattern: str) -> list[Path]:
    return sorted(lighthouse_fixtures_dir().glob(pattern))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return lighthouse_fixtures_dir()


@pytest.fixture(scope="session")
def annotations_dir() -> Path:
    return SHARED / "data" / "annotations"


@pytest.fixture(scope="session")
def lighthouse_configs_dir() -> Path:
    return SHARED / "data" / "lighthouse_configs"
