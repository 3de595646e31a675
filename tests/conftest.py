import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


try:  # property-based tests (tests/test_fuzz.py): the same examples on every machine by default
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, max_examples=100, deadline=None)
    _hypothesis_settings.register_profile("explore", max_examples=2000, deadline=None)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # only the fuzz tests need it (the dev extra installs it)
    pass


def lighthouse_fixtures_dir() -> Path:
    """Folder of Lighthouse parity fixtures; every fixture found there is tested."""
    default = SHARED / "fixtures" / "lighthouse"
    return Path(os.environ.get("LIGHTHOUSE_AUDIO_FIXTURES", default))


def fixture_files(pattern: str) -> list[Path]:
    return sorted(lighthouse_fixtures_dir().glob(pattern))


def lighthouse_model_fixtures_dir() -> Path:
    """Folder of the parity fixtures of Lighthouse's other models (Moment-DETR, CG-DETR, ...);
    every fixture found there is tested."""
    default = SHARED / "fixtures" / "lighthouse_models"
    return Path(os.environ.get("LIGHTHOUSE_AUDIO_MODEL_FIXTURES", default))


def model_fixture_files(pattern: str) -> list[Path]:
    return sorted(lighthouse_model_fixtures_dir().glob(pattern))


@pytest.fixture(scope="session", autouse=True)
def no_network_and_own_cache(tmp_path_factory):
    """Tests never download (offline mode on) and never touch the user's cache; tests of the
    download code switch offline mode off themselves, against a server on 127.0.0.1."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIGHTHOUSE_AUDIO_OFFLINE", "1")
        patch.setenv("LIGHTHOUSE_AUDIO_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return lighthouse_fixtures_dir()


@pytest.fixture(scope="session")
def annotations_dir() -> Path:
    return SHARED / "data" / "annotations"


@pytest.fixture(scope="session")
def lighthouse_configs_dir() -> Path:
    return SHARED / "data" / "lighthouse_configs"


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """Synthetic separable features (tests/toy_model.py)."""
    from tests.toy_model import write_toy_data

    return write_toy_data(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def toy_trained(toy_data, tmp_path_factory) -> Path:
    """Results root of AM-DETR trained on the toy task through the CLI (about 45 s)."""
    import torch

    from lighthouse_audio.cli.main import main
    from tests.toy_model import TOY_EPOCHS, train_args

    results = tmp_path_factory.mktemp("results")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(train_args(toy_data, results, f"n_epoch={TOY_EPOCHS}")) == 0
    finally:
        torch.set_num_threads(threads)
    return results


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny models: they gain nothing from a second thread,
    and on a busy machine every small op waits for it (measured on a loaded 2-core machine: one
    toy epoch of a small TaskWeave took 56 s of CPU on two threads, under 2 s on one)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy_feature():
    """Registers the weight-free ``toy`` feature (ToyEncoder) for the duration of a test."""
    from lighthouse_audio.encoders.base import FeatureSpec
    from lighthouse_audio.registry import FEATURES
    from lighthouse_audio.testing.dummies import ToyEncoder

    spec = FEATURES.register(FeatureSpec("toy", "audio", encoder=lambda **kw: ToyEncoder()))
    yield spec
    FEATURES.unregister("toy")
