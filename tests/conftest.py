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


@pytest.fixture
def toy_feature():
    """Registers the weight-free ``toy`` feature (ToyEncoder) for the duration of a test."""
    from lighthouse_audio.features import FeatureSpec
    from lighthouse_audio.registry import FEATURES
    from lighthouse_audio.testing.dummies import ToyEncoder

    spec = FeatureSpec("toy", "audio", 8, 4, encoder=lambda **kw: ToyEncoder())
    FEATURES.add("toy", spec, domain="audio")
    yield spec
    FEATURES._entries.pop("toy")
