"""``lighthouse serve``: the web app in a real headless Chromium, and its API under two users.

The browser test needs Debian's chromium and chromium-driver (tests/web/install_browser.sh, run
by the README's test command) and selenium; without them it is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
import torch

from lighthouse_audio.registry import MODELS
from tests.conftest import SHARED

gr = pytest.importorskip("gradio")

RECORDING = SHARED / "sounds" / "bg" / "farm" / "0ad__building_amb_farm_joined.ogg"  # 85 s
SHORT = sorted((SHARED / "sounds" / "fg" / "animal").iterdir())[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_checkpoint(model: str, folder: Path) -> Path:
    """``model`` with random weights on the real offline encoder's feature dims (aisfx-minilm)."""
    from lighthouse_audio.config import load_config
    from lighthouse_audio.engine.train import lighthouse_checkpoint
    from lighthouse_audio.models.bundle import build_model_bundle

    opt = load_config(model, "custom", "aisfx-minilm", ["max_v_l=11", "max_a_l=11"])
    torch.manual_seed(0)
    network = build_model_bundle(opt).model
    optimizer = torch.optim.AdamW(network.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 400)
    path = folder / f"{model}.ckpt"
    torch.save(lighthouse_checkpoint(network, optimizer, scheduler, 0, opt), path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return random_checkpoint("qd_detr", tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def predictor(checkpoint):
    pytest.importorskip("aisfx")
    from lighthouse_audio.predictor import MomentPredictor

    return MomentPredictor(checkpoint)


@pytest.fixture(scope="module")
def server(predictor, tmp_path_factory):
    from lighthouse_audio.web.app import ServeConfig, launch

    config = ServeConfig(
        port=_free_port(), recordings=SHARED / "sounds" / "bg", max_duration=600.0,
        max_upload_mb=5.0, workdir=tmp_path_factory.mktemp("serve-work"),
    )  # fmt: skip
    app = launch(predictor, config, block=False)
    yield f"http://127.0.0.1:{config.port}/", config
    app.close()


@pytest.fixture
def client(server):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(server[0], verbose=False)


def _find(client, upload=None, chosen=None, queries="a dog barks", top_k=3):
    from gradio_client import handle_file

    return client.predict(
        handle_file(str(upload)) if upload else None, chosen, queries, top_k, 0.0,
        api_name="/find_moments",
    )  # fmt: skip


def test_binds_this_machine_only_by_default():
    from lighthouse_audio.web.app import ServeConfig

    assert ServeConfig().host == "127.0.0.1"


def test_two_users_at_once_each_get_their_own_moments(client, server):
    results: dict[str, tuple] = {}

    def user(name, upload, queries):
        results[name] = _find(client, upload=upload, queries=queries)

    threads = [
        threading.Thread(target=user, args=("long", RECORDING, "a dog barks\nwind blows")),
        threading.Thread(target=user, args=("short", SHORT, "a door slams")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    picture, table, status = results["long"][0], results["long"][1], results["long"][2]
    assert Path(picture).stat().st_size > 20_000
    rows = table["data"]
    assert [r[0] for r in rows] == ["a dog barks"] * 3 + ["wind blows"] * 3
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d", r[2]) for r in rows)
    assert "overlapping chunks" in status and RECORDING.name in status
    short_rows = results["short"][1]["data"]
    assert {r[0] for r in short_rows} == {"a door slams"} and SHORT.name in results["short"][2]


def test_a_server_recording_is_chosen_by_name_never_by_path(client):
    picture, table, status = _find(client, chosen="farm/" + RECORDING.name)[:3]
    assert RECORDING.name in status and table["data"]
    with pytest.raises(Exception, match="not in the list of choices|unknown recording"):
        _find(client, chosen="../../../etc/passwd")


def test_limits_and_bad_input_are_clear_errors(client, tmp_path):
    from lighthouse_audio.testing.dummies import write_tone

    with pytest.raises(Exception, match="upload a recording or choose one"):
        _find(client)
    with pytest.raises(Exception, match="no query given"):
        _find(client, upload=SHORT, queries="   \n ")
    with pytest.raises(Exception, match="query 1 has 5000 words"):
        _find(client, upload=SHORT, queries="dog " * 5000)
    long = tmp_path / "long.wav"
    write_tone(long, 700.0, sample_rate=1000)  # 1.4 MB, 11 min 40 s: over the 600 s limit
    with pytest.raises(Exception, match="lasts 00:11:40.0; this server accepts up to 00:10:00.0"):
        _find(client, upload=long)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really audio")
    with pytest.raises(Exception, match="not a readable audio file"):
        _find(client, upload=broken)
    big = tmp_path / "big.wav"
    write_tone(big, 200.0, sample_rate=16000)  # 16-bit: 6.4 MB > 5 MB
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        _find(client, upload=big)


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed "
                    "(bash tests/web/install_browser.sh)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1400,1400",
    ):
        options.add_argument(flag)  # fmt: skip
    return webdriver.Chrome(service=Service(driver), options=options)


def test_in_a_real_browser_upload_type_see_and_play_a_moment(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = server
    browser = _browser()
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 120)
        upload = wait.until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#recording input[type=file]")
        )
        upload.send_keys(str(RECORDING))
        wait.until(lambda b: "1:25" in b.find_element(By.ID, "recording").text)  # loaded
        browser.find_element(By.CSS_SELECTOR, "#queries textarea").send_keys("a dog barks\nrain")
        browser.find_element(By.ID, "find").click()
        wait.until(lambda b: "queries on" in b.find_element(By.ID, "status").text)
        status = browser.find_element(By.ID, "status").text
        assert f"2 queries on {RECORDING.name} (00:01:25.3), predicted in" in status
        times = "//*[@id='moments']//*[starts-with(normalize-space(text()), '00:')]"
        cells = [c for c in browser.find_elements(By.XPATH, times) if c.is_displayed()]
        assert len(cells) == 2 * 3 * 2  # queries x moments x (start, end)
        start, end = cells[2].text, cells[3].text  # the first query's second moment
        picture = browser.find_element(By.CSS_SELECTOR, "#picture img")
        assert picture.get_attribute("naturalWidth") not in (None, "0")
        cells[2].click()
        seconds = _seconds(end) - _seconds(start)
        wait.until(lambda b: f"0:{int(seconds):02d}" in b.find_element(By.ID, "moment").text)
        browser.save_screenshot(str(tmp_path / "serve.png"))
    finally:
        browser.quit()


def _seconds(hms: str) -> float:
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("model", [m for m in MODELS.names() if m != "qd_detr"])
def test_every_model_serves_moments(model, tmp_path):
    """The app is the model's predictor behind a page: each registered model answers a query."""
    pytest.importorskip("aisfx")
    gradio_client = pytest.importorskip("gradio_client")
    from lighthouse_audio.predictor import MomentPredictor
    from lighthouse_audio.web.app import ServeConfig, launch

    predictor = MomentPredictor(random_checkpoint(model, tmp_path))
    config = ServeConfig(port=_free_port(), recordings=None, workdir=tmp_path / "work")
    app = launch(predictor, config, block=False)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{config.port}/", verbose=False)
        table, status = _find(client, upload=SHORT, queries="a dog barks", top_k=2)[1:3]
    finally:
        app.close()
    rows = table["data"]
    assert [r[0] for r in rows] == ["a dog barks"] * len(rows) and 1 <= len(rows) <= 2
    assert SHORT.name in status
