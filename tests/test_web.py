"""`artvec serve` against the demo store (plus three planted duplicates): the JSON API through the real
app and database, and the pages in a real headless Chromium driven by Playwright."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from artvec import db
from artvec.config import Settings
from helpers import run_cli

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parent.parent
PLANTED = {901: 1, 902: 10, 903: 20}        # planted id -> the demo picture it duplicates


def plant_duplicates(url: str, images: Path) -> None:
    """Three more catalogue rows: a byte-for-byte copy, a smaller rescan (half size) and a 92 % crop."""
    engine = create_engine(db.sqlalchemy_url(url))
    with engine.begin() as connection:
        files = dict(connection.execute(text("select id, image_path from demo.pictures")).all())
        for copy, original in PLANTED.items():
            source = images / files[original]
            if copy == 901:
                shutil.copyfile(source, images / "901-copy.png")
                name = "901-copy.png"
            elif copy == 902:
                name = "902-rescaled.png"
                picture = Image.open(source)
                picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.BICUBIC).save(images / name)
            else:
                name = "903-cropped.png"
                picture = Image.open(source)
                picture.crop((12, 12, picture.width - 12, picture.height - 12)).save(images / name)
            connection.execute(text("""
                insert into demo.pictures (id, title, image_path, artist_id, era_id)
                select :copy, title || ' (copy)', :name, artist_id, era_id from demo.pictures where id = :original
                on conflict do nothing"""), {"copy": copy, "name": name, "original": original})
    engine.dispose()


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    home = Path(tempfile.mkdtemp(prefix="artvec-web-"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARTVEC_")}
    env["ARTVEC_HOME"] = str(home)
    out = run_cli("demo", env=env).stdout
    assert "browse it: artvec serve --image-root" in out and "http://127.0.0.1:8000" in out
    url = run_cli("db", "url", env=env).stdout.strip()
    images = home / "demo" / "images"
    plant_duplicates(url, images)
    assert "sync: 3 embedded, 40 unchanged" in run_cli("demo", env=env).stdout
    settings = Settings.load(cwd=home, overrides={"database.url": url, "catalogue.facets": ["era", "artist"],
                                                  "catalogue.image_root": str(images)})
    yield {"home": home, "env": {**env, "ARTVEC_DATABASE_URL": url}, "url": url, "images": images,
           "settings": settings, "cache": tmp_path_factory.mktemp("thumbnails")}
    db.stop_embedded(home / db.EMBEDDED_DIR)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def client(demo_store):
    from fastapi.testclient import TestClient

    from artvec.web.app import create_app

    app = create_app(demo_store["settings"], cache=demo_store["cache"], max_upload_bytes=2 * 1024 * 1024)
    with TestClient(app) as client:
        yield client


# ---- the JSON API ----------------------------------------------------------------------------

def test_api_similar_by_id_with_distances_apart_and_filters(client, demo_store):
    config = demo_store["settings"].embedding_config()
    expanded = client.get("/api/similar", params={"id": 1, "k": 5}).json()["rows"]   # search.expand: 2
    assert expanded[0]["artwork_id"] == 901 and 0 < expanded[0]["distance"] < expanded[1]["distance"]  # its copy first
    assert expanded[0]["style_distance"] == pytest.approx(0, abs=1e-6)     # the parts apart: to the picture itself
    body = client.get("/api/similar", params={"id": 1, "k": 5, "expand": 0}).json()   # the plain distance
    rows = body["rows"]
    assert len(rows) == 5 and 1 not in [row["artwork_id"] for row in rows]
    assert [row["distance"] for row in rows] == sorted(row["distance"] for row in rows)
    assert rows[0]["artwork_id"] == 901 and rows[0]["distance"] == pytest.approx(0, abs=1e-6)   # its copy
    for row in rows:     # the combined vector is the style part beside the (whitened) colour part, weighted
        style_share = (config.style_weight * row["style_distance"]) ** 2
        assert style_share - 1e-4 <= row["distance"] ** 2 <= style_share + (2 * config.colour_weight) ** 2
        if not config.whitening:  # unwhitened, the colour part in it is the stored (plain) one
            assert row["distance"] ** 2 == pytest.approx(style_share + (config.colour_weight * row["colour_distance"]) ** 2,
                                                         abs=1e-4)
    assert config.whitening and any(row["colour_distance"] > 0.01 for row in rows)
    crane = client.get("/api/similar", params={"id": 1, "k": 5, "filter": "artist=Walter Crane"}).json()["rows"]
    assert len(crane) == 5 and all(row["facets"]["artist"] == "Walter Crane" for row in crane)
    style = client.get("/api/similar", params={"id": 1, "k": 3, "by": "style", "expand": 0}).json()["rows"]
    assert all(row["distance"] == pytest.approx(row["style_distance"]) for row in style)
    excluded = client.get("/api/similar", params={"id": 1, "k": 8, "exclude": ["artist=Gustave Doré"]}).json()["rows"]
    assert all(row["facets"]["artist"] != "Gustave Doré" for row in excluded)


def test_api_similar_by_palette_matches_the_cli(client, demo_store):
    palette = "#8b4513:60,#f5deb3:40"
    rows = client.get("/api/similar", params={"colours": palette, "by": "palette", "k": 4}).json()["rows"]
    cli = json.loads(run_cli("similar", "--colours", palette, "-k", "4", "--json", env=demo_store["env"]).stdout)
    assert [row["artwork_id"] for row in rows] == [row["artwork_id"] for row in cli]
    assert all(row["style_distance"] is None for row in rows)


def test_api_upload_searches_and_is_limited(client, demo_store):
    data = (demo_store["images"] / "001-landscape.png").read_bytes()
    rows = client.post("/api/similar/upload", files={"picture": ("mine.png", data, "image/png")},
                       data={"k": "3"}).json()["rows"]
    assert {rows[0]["artwork_id"], rows[1]["artwork_id"]} == {1, 901} and rows[0]["distance"] < 1e-4
    just_over = client.post("/api/similar/upload", files={"picture": ("big.png", b"\0" * (2 * 1024 * 1024 + 1))})
    assert just_over.status_code == 400 and "larger than 2 MB" in just_over.json()["error"]
    far_over = client.post("/api/similar/upload", files={"picture": ("big.png", b"\0" * (3 * 1024 * 1024))})
    assert far_over.status_code == 413 and "larger than 2 MB" in far_over.json()["error"]
    broken = client.post("/api/similar/upload", files={"picture": ("bad.png", b"not a picture")})
    assert broken.status_code == 400 and "cannot read the uploaded picture" in broken.json()["error"]


@pytest.mark.parametrize("params, message", [
    ({"id": 1, "filter": "era; drop table x=1"}, "unknown filter"), ({"id": 1, "filter": "nonsense"}, "name=value"),
    ({"id": 99999}, "no embedding"), ({}, "search by an artwork id"), ({"colours": "#zz", "by": "palette"}, "is not #rrggbb"),
    ({"id": 1, "colours": "#8b4513", "by": "palette"}, "search by an artwork id"),
    ({"colours": "#8b4513"}, "colours with by=palette")])
def test_api_refuses_bad_requests_in_one_line(client, params, message):
    response = client.get("/api/similar", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_api_validates_sizes(client):
    assert client.get("/api/similar", params={"id": 1, "k": 101}).status_code == 422
    assert client.get("/api/similar", params={"id": 1, "by": "shape"}).status_code == 422
    assert client.get("/api/duplicates", params={"threshold": 3}).status_code == 422
    assert client.post("/api/decisions", json={"a": "1", "b": "2", "decision": "maybe"}).status_code == 422


def test_thumbnails_only_for_stored_pictures_and_cached(client, demo_store):
    first = client.get("/thumb/3", params={"size": 160})
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(first.content)).size) == 160
    assert len(list(demo_store["cache"].rglob("*-160.jpg"))) == 1
    assert client.get("/thumb/3", params={"size": 160}).content == first.content
    for path in ("/thumb/..%2F..%2Fetc%2Fpasswd", "/thumb/99999", "/thumb/1%20or%201=1"):
        assert client.get(path).status_code == 404
    assert client.get("/thumb/3", params={"size": 5000}).status_code == 400


def test_openapi_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/similar", "/api/similar/upload", "/api/duplicates", "/api/decisions"} <= set(paths)
    assert set(paths["/api/decisions"]) == {"get", "post"}


def test_api_similar_by_copy_finds_the_planted_copies(client, demo_store):
    """by=copy (the copy vector), by id and by upload: a planted rescan or crop finds its original first."""
    for copy, original in PLANTED.items():
        rows = client.get("/api/similar", params={"id": copy, "k": 2, "by": "copy"}).json()["rows"]
        assert rows[0]["artwork_id"] == original, (copy, rows)
    data = (demo_store["images"] / "903-cropped.png").read_bytes()
    rows = client.post("/api/similar/upload", files={"picture": ("mine.png", data, "image/png")},
                       data={"k": "2", "by": "copy"}).json()["rows"]
    assert rows[0]["artwork_id"] == 903 and rows[0]["distance"] < 1e-4 and rows[1]["artwork_id"] == PLANTED[903]


def test_api_duplicates_and_a_decision(client, demo_store):
    groups = client.get("/api/duplicates").json()["groups"]
    pairs = {(pair["a"], pair["b"]) for group in groups for pair in group["pairs"]}
    assert {(1, 901), (10, 902), (20, 903)} <= pairs
    made = client.post("/api/decisions", json={"a": "902", "b": "10", "decision": "variant", "who": "api test"})
    assert made.status_code == 201 and made.json()["decision"] == "variant"
    after = client.get("/api/duplicates").json()
    assert (10, 902) not in {(p["a"], p["b"]) for g in after["groups"] for p in g["pairs"]}
    assert after["decided_pairs_left_out"] >= 1
    listed = client.get("/api/decisions").json()
    assert listed[0]["decided_by"] == "api test" and listed[0]["current"] is True


def test_the_app_runs_as_a_read_only_role_that_may_insert_decisions(demo_store):
    from fastapi.testclient import TestClient

    from artvec.web.app import create_app

    engine = create_engine(db.sqlalchemy_url(demo_store["url"]))
    with engine.connect() as connection:
        connection.execute(text("drop role if exists web_curator"))
        connection.execute(text("create role web_curator login"))
        connection.commit()
    engine.dispose()
    run_cli("grant-read", "web_curator", "--decisions", env=demo_store["env"])
    url = demo_store["url"].replace("postgresql://postgres:", "postgresql://web_curator:", 1)
    settings = Settings.load(overrides={**demo_store["settings"].values, "database.url": url})
    with TestClient(create_app(settings, cache=demo_store["cache"])) as client:
        assert len(client.get("/api/similar", params={"id": 2, "k": 3}).json()["rows"]) == 3
        made = client.post("/api/decisions", json={"a": "20", "b": "903", "decision": "same"})
        assert made.status_code == 201 and made.json()["decided_by"] == "web_curator"
    engine = create_engine(db.sqlalchemy_url(url))
    with engine.connect() as connection:
        with pytest.raises(Exception, match="permission denied"):
            connection.execute(text("update artvec.duplicate_decisions set decision = 'different'"))
    engine.dispose()


# ---- the pages in a real browser -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_store):
    import uvicorn

    from artvec.web.app import create_app

    port = free_port()
    app = create_app(demo_store["settings"], cache=demo_store["cache"])
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not uv.started and time.time() < deadline:
        time.sleep(0.1)
    assert uv.started
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    """Into $ARTVEC_SCREENSHOTS (docs/ when making the README's pictures), else nowhere."""
    folder = os.environ.get("ARTVEC_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def tiles(page) -> list[dict]:
    return [{"id": int(tile.get_attribute("data-id")),
             "distance": float(tile.locator(".distance").inner_text()),
             "artist": tile.locator("[data-facet=artist]").inner_text()}
            for tile in page.locator(".tile").all()]


def test_browser_search_filter_and_pivot(server, page):
    page.goto(server + "/")
    assert page.title() == "artvec — more like this"
    page.fill("input[name=id]", "12")
    page.fill("input[name=k]", "8")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".tile")
    found = tiles(page)
    assert len(found) == 8 and [t["distance"] for t in found] == sorted(t["distance"] for t in found)
    assert all(page.locator(".tile img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"))
    screenshot(page, "screenshot-search.png")

    page.select_option("select[name=filter][data-facet=artist]", "artist=Katsushika Hokusai")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".tile")
    narrowed = tiles(page)
    assert narrowed and all(t["artist"] == "Katsushika Hokusai" for t in narrowed)
    assert {t["artist"] for t in found} != {"Katsushika Hokusai"}

    target = narrowed[0]["id"]
    page.click(f".tile[data-id='{target}'] a")
    page.wait_for_selector(".tile")
    assert f"id={target}" in page.url and f"More like #{target}" in page.inner_text(".query")
    assert target not in [t["id"] for t in tiles(page)]
    assert all(t["artist"] == "Katsushika Hokusai" for t in tiles(page))     # the filter stays on


def test_browser_upload_searches(server, page, demo_store):
    page.goto(server + "/")
    page.set_input_files("input[name=picture]", str(demo_store["images"] / "010-harbour.png"))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector(".tile")
    found = tiles(page)
    # the picture (or its copy) first, far nearer than the rest: the query averaged with its two nearest (itself and
    # its copy), so not at 0
    assert len(found) == 12 and found[0]["id"] in (10, 902) and found[0]["distance"] < 0.5 * found[2]["distance"]
    assert "uploaded picture" in page.inner_text(".query")


def test_browser_duplicate_decision_survives_reload_and_a_new_run(server, page, demo_store):
    page.goto(server + "/duplicates?who=ann")
    pair = page.locator("[data-pair='1-901']").first
    assert pair.is_visible()
    screenshot(page, "screenshot-duplicates.png")
    pair.locator("button[value=same]").click()
    page.wait_for_load_state()
    assert page.locator(".pair[data-pair='1-901']").count() == 0
    page.reload()
    assert page.locator(".pair[data-pair='1-901']").count() == 0
    decided = page.locator("#decisions tr[data-pair='1-901']").first.inner_text()
    assert "same" in decided and "ann" in decided
    again = json.loads(run_cli("duplicates", "--json", env=demo_store["env"]).stdout)
    assert [1, 901] not in [[p["a"], p["b"]] for g in again["groups"] for p in g["pairs"]]


def test_artvec_serve_command_serves_the_page(demo_store):
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    exe = Path(sys.executable).with_name("artvec")
    server = subprocess.Popen([str(exe), "serve", "--port", str(port), "--image-root", str(demo_store["images"]),
                               "--cache", str(demo_store["cache"])], env=demo_store["env"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, body = time.time() + 60, None
        while body is None and time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/similar?id=5&k=2", timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.3)
        assert body is not None and len(body["rows"]) == 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/thumb/5?size=160", timeout=10) as response:
            assert response.headers["content-type"] == "image/jpeg"
    finally:
        server.terminate()
        out = server.communicate(timeout=20)[0]
    assert f"open http://127.0.0.1:{port}" in out
