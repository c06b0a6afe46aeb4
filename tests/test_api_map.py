"""The map page in a real browser (Debian chromium, headless): it loads, markers appear, a screenshot is kept.

Needs ``/usr/bin/chromium`` (``.ci/browser.sh`` installs it). The screenshot is written to
``var/test-artifacts/map.png`` (and the pytest tmp dir) for a human to look at.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from PIL import Image
from pyproj import Transformer

from api.app import create_app
from api_fixtures import PRODUCT_TRANSFORM_ORIGIN, T0, make_resources, make_store, write_band_folder
from pipeline.store import DetectionRecord, SceneRecord
from vesselwatch.settings import PROJECT_DIR, Settings

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_DIR / "var" / "test-artifacts"


def _chromium(profile: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("map")
    store = make_store()
    product = write_band_folder(folder / "S2_PRODUCT")
    x, y = PRODUCT_TRANSFORM_ORIGIN[0] + 10 * 100.5, PRODUCT_TRANSFORM_ORIGIN[1] - 10 * 100.5
    lon, lat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True).transform(x, y)
    store.replace_scene(
        SceneRecord(scene_id="P", path=str(product), crs="EPSG:32631", width=200, height=200, n_detections=1,
                    acquired=T0),
        [DetectionRecord(detection_id="P/0", scene_id="P", lon=lon, lat=lat, row=100.5, col=100.5, length_m=50.0,
                         width_m=10.0, score=0.95, acquired=T0, heading_deg=300.0, heading_uncertainty_deg=5.0,
                         heading_ambiguous=False)],
    )
    app = create_app(Settings(), store=store, resources=make_resources(folder))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


def test_map_page_loads_and_shows_every_layer(server, tmp_path):
    result = _chromium(tmp_path / "profile", "--dump-dom", f"{server}/map")
    dom = result.stdout
    assert 'data-loaded="true"' in dom, (result.stderr[-2000:], dom[:2000])
    counts = dict(re.findall(r'data-(vessels|platforms|areas|alerts)="(\d+)"', dom))
    assert counts == {"vessels": "6", "platforms": "7", "areas": "2", "alerts": "2"}, counts
    assert len(re.findall(r'class="[^"]*vw-vessel', dom)) == 6  # one SVG marker per detection
    assert len(re.findall(r'class="[^"]*vw-heading', dom)) == 2  # arrows where the heading is known
    assert len(re.findall(r'class="[^"]*vw-platform', dom)) == 7
    assert "leaflet-container" in dom and "cdn" not in dom.lower()


def test_map_screenshot_with_a_vessel_popup_and_its_chip(server, tmp_path):
    shot = tmp_path / "map.png"
    result = _chromium(tmp_path / "profile", "--window-size=1200,800", f"--screenshot={shot}",
                       f"{server}/map?open=P/0")
    assert shot.exists(), result.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "map.png")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[:2] == (800, 1200)
    vessel_red = (image[..., 0] > 200) & (image[..., 1] < 90) & (image[..., 2] < 90)
    assert vessel_red.sum() > 20  # marker and heading arrow drawn
    # The popup holds the vessel's chip picture.
    popup_dom = _chromium(tmp_path / "profile2", "--dump-dom", f"{server}/map?open=P/0").stdout
    assert "/vessels/P/0/chip.png" in popup_dom
