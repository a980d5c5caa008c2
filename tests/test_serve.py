"""The playground: its JSON API on the tiny model, and one real-browser test."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import threading
import time

import pytest
import torch

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from traitlens.serve import Playground, create_app  # noqa: E402
from traitlens.serve.session import load_library  # noqa: E402
from traitlens.steering import SteeringVector  # noqa: E402
from traitlens.steering.artifact import save_vector, withdraw  # noqa: E402


@pytest.fixture(scope="module")
def library(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    for k, (name, layer) in enumerate((("EI", 1), ("JP", 2))):
        g = torch.Generator().manual_seed(k)
        offset = 6 * torch.randn(tiny.d_model, generator=g)
        vector = SteeringVector(
            {layer: offset}, model=tiny.fingerprint.to_dict(), trait=name, recommended_alpha=1.0, method="meandiff"
        )
        probe = {"per_layer_heldout_accuracy": {str(i): 0.5 + 0.1 * i for i in range(tiny.n_layers)}}
        save_vector(vector, root / name, {"probe": probe})
    withdraw(root / "JP", "moves wording")  # still served, but marked
    return root


@pytest.fixture()
def client(tiny, library, tmp_path):
    playground = Playground(tiny, load_library(library, tiny), tmp_path / "mixes")
    return TestClient(create_app(playground)), playground


def test_health_config_and_page(client):
    api, _ = client
    assert api.get("/api/health").json() == {"model": "tiny", "vectors": ["EI", "JP"]}
    config = api.get("/api/config").json()
    assert [s["vector"] for s in config["sliders"]] == ["EI", "JP"] and config["sliders"][0]["left"] == "E"
    assert [s["withdrawn"] for s in config["sliders"]] == [None, "moves wording"]
    assert len(config["probe"]["JP"]) == 4
    page = api.get("/")
    assert page.status_code == 200 and "traitlens playground" in page.text


def test_generate_steers_only_the_steered_column(client):
    api, _ = client
    plain = api.post("/api/generate", json={"prompt": "Tell me a story.", "mix": {}, "max_new_tokens": 12}).json()
    assert plain["unsteered"] == plain["steered"] and plain["perplexity_change"] == 0.0
    moved = api.post(
        "/api/generate", json={"prompt": "Tell me a story.", "mix": {"JP": 2}, "max_new_tokens": 12}
    ).json()
    assert moved["unsteered"] == plain["unsteered"] and moved["steered"] != plain["steered"]
    assert moved["perplexity_change"] != 0.0


def test_stream_ends_with_the_same_texts_as_generate(client):
    api, _ = client
    mix = json.dumps({"EI": -1.5})
    response = api.get("/api/stream", params={"prompt": "Hello there", "mix": mix, "max_new_tokens": 8})
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert {e["column"] for e in events[:-1]} == {"unsteered", "steered"} and events[-1]["done"]
    direct = api.post("/api/generate", json={"prompt": "Hello there", "mix": {"EI": -1.5}, "max_new_tokens": 8}).json()
    assert events[-1]["steered"] == direct["steered"] and events[-1]["unsteered"] == direct["unsteered"]


def test_concurrent_requests_with_opposite_mixes_equal_their_sequential_results(client):
    api, _ = client
    bodies = [{"prompt": "What do you do on Sundays?", "mix": {"JP": m}, "max_new_tokens": 10} for m in (2.0, -2.0)]
    sequential = [api.post("/api/generate", json=b).json() for b in bodies]
    results: list = [None, None]

    def call(k: int) -> None:
        results[k] = api.post("/api/generate", json=bodies[k]).json()

    threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == sequential and sequential[0]["steered"] != sequential[1]["steered"]


def test_assess_returns_four_shares_beside_the_unsteered_ones(client, monkeypatch):
    from traitlens.assess import api as assess_api

    api, _ = client
    measured = []
    real = assess_api.measure_validity
    monkeypatch.setattr(
        assess_api, "measure_validity", lambda s, items, *a, **k: measured.append(items) or real(s, items, *a, **k)
    )
    data = api.post("/api/assess", json={"mix": {"JP": 1}}).json()
    assert measured and all(i.split == "train" for items in measured for i in items)  # readouts chosen on train
    assert set(data["shares"]) == {"EI", "SN", "TF", "JP"} and len(data["type"]) == 4
    assert data["shares"]["JP"]["J"] + data["shares"]["JP"]["P"] == pytest.approx(1.0)
    assert data["shares"]["JP"] != data["unsteered"]["JP"]


def test_save_writes_a_vector_assess_accepts(client, tiny):
    from traitlens.assess import assess
    from traitlens.instrument.items import default_items
    from traitlens.steering.inject import load_intervention

    api, playground = client
    saved = api.post("/api/save", json={"mix": {"EI": 1, "JP": -0.5}, "name": "calm-planner"}).json()
    steering = load_intervention(saved["saved"], tiny)
    assert steering.alpha == 1.0 and steering.vector.layers == [1, 2]
    result = assess(tiny, default_items().select("eval", "JP"), readout="option", intervention=steering)
    assert result.dimensions["JP"].n_items == 16


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/generate", {"prompt": "hi", "mix": {"XX": 1}}, "unknown vector 'XX'"),
        ("/api/generate", {"prompt": "hi", "mix": {"JP": 3.5}}, "limit is -3.0..3.0"),
        ("/api/generate", {"prompt": "hi", "mix": {"JP": "lots"}}, "finite number"),
        ("/api/generate", {"prompt": "  ", "mix": {}}, "prompt must be non-empty"),
        ("/api/generate", {"prompt": "x" * 3000, "mix": {}}, "limit is 2000"),
        ("/api/generate", {"prompt": "hi", "max_new_tokens": 10_000}, "max_new_tokens"),
        ("/api/save", {"mix": {"JP": 1}, "name": "../escape"}, "name must be"),
        ("/api/save", {"mix": {"JP": 1}, "name": "mix\n"}, "name must be"),
        ("/api/save", {"mix": {}, "name": "empty"}, "the mix is empty"),
        ("/api/assess", {"mix": {"JP": float("inf")}}, "finite number"),
    ],
)
def test_bad_requests_are_one_line_4xx_and_write_nothing(client, path, body, message):
    api, playground = client
    response = api.post(path, content=json.dumps(body))
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] and "\n" not in response.json()["error"]
    assert not playground.out.exists()
    assert api.get("/api/health").status_code == 200  # still serving


def test_malformed_json_and_a_full_queue(client, monkeypatch):
    api, playground = client
    response = api.post("/api/generate", content=b"{not json")
    assert response.status_code == 400 and "malformed JSON" in response.json()["error"]
    assert api.get("/api/stream", params={"prompt": "hi", "mix": "{oops"}).status_code == 400
    monkeypatch.setattr(playground, "_waiting", 4)
    busy = api.post("/api/generate", json={"prompt": "hi", "mix": {}})
    assert busy.status_code == 429 and "waiting" in busy.json()["error"]


def test_an_abandoned_stream_leaves_the_model_free(client):
    """A stream suspended after its first event (its client gone, the generator never closed)
    holds no lock: the next request runs at once."""
    _, playground = client
    events = playground.stream("Hello there", {"JP": 1}, 48)
    assert "column" in next(events)
    done = threading.Event()

    def call() -> None:
        playground.generate("Hi", {}, 4)
        done.set()

    threading.Thread(target=call, daemon=True).start()
    assert done.wait(60), "generate waited on the lock an abandoned stream still held"
    events.close()


def test_a_client_gone_mid_stream_frees_the_server(tiny, library, tmp_path):
    """Over real HTTP: read one event of /api/stream, hang up, then /api/generate still answers."""
    with _served(tiny, library, tmp_path) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET /api/stream?prompt=Hello&max_new_tokens=200 HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while b"data: " not in received:
                received += sock.recv(4096)
        body = json.dumps({"prompt": "Hi", "mix": {}, "max_new_tokens": 4}).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(
                b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200") and b"unsteered" in reply


@contextlib.contextmanager
def _served(tiny, library, tmp_path):
    """A real uvicorn server for a fresh playground on a free local port; yields the port."""
    import uvicorn

    playground = Playground(tiny, load_library(library, tiny), tmp_path / "mixes")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(playground), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser_or_skip():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("TRAITLENS_REQUIRE_BROWSER"):
            pytest.fail("TRAITLENS_REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    return chromium, driver


def test_the_page_in_a_real_browser(tiny, library, tmp_path):
    chromium, driver = _browser_or_skip()
    with _served(tiny, library, tmp_path) as port:
        _drive_the_page(chromium, driver, port, tmp_path)


def _drive_the_page(chromium: str, driver: str, port: int, tmp_path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        WebDriverWait(browser, 30).until(lambda b: b.execute_script("return document.body.dataset.ready") == "yes")
        marked = browser.execute_script("return document.getElementById('slider-JP').parentElement.title")
        assert marked == "withdrawn: moves wording"  # the withdrawn vector is marked where it is used
        browser.execute_script(
            "const s = document.getElementById('slider-JP'); s.value = 2; s.dispatchEvent(new Event('input'));"
        )
        prompt = browser.find_element("id", "prompt")
        prompt.clear()
        prompt.send_keys("Tell me about your weekend plans.")
        browser.find_element("id", "go").click()
        WebDriverWait(browser, 120).until(lambda b: b.execute_script("return document.body.dataset.generated") == "yes")
        unsteered = browser.find_element("id", "unsteered").text
        steered = browser.find_element("id", "steered").text
        assert unsteered and steered and unsteered != steered
        assert "perplexity change" in browser.find_element("id", "ppl").text
        shot = tmp_path / "playground.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        browser.quit()
