"""`artvec sync` against a real catalogue table, real pictures, the real model and the real CLI."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text

from artvec.config import Settings
from artvec.sync import SyncOptions, sync
from helpers import run_cli

FAST = {"ARTVEC_EMBEDDING_IMAGE_SIZE": "64"}     # small input: the same code path, quicker


def make_picture(path: Path, seed: int, size: int = 72) -> None:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=3)
    stripes = (np.arange(size)[:, None] * (seed % 5 + 1) + np.arange(size)[None, :] * (seed % 3)) % 23 < 11
    pixels = np.where(stripes[..., None], base, 255 - base) + rng.integers(0, 30, size=(size, size, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)


@pytest.fixture
def catalogue(env, engine, tmp_path, monkeypatch):
    """A site-owned catalogue table in public, pictures in a folder, artvec initialised."""
    root = tmp_path / "images"
    root.mkdir()
    with engine.begin() as connection:
        connection.execute(text("""
            create table public.artworks (id bigint primary key, image_path text, era text, artist text,
                                          updated_at timestamptz not null default now())"""))
    env.update(FAST, ARTVEC_CATALOGUE_TABLE="public.artworks", ARTVEC_CATALOGUE_IMAGE_COLUMN="image_path",
               ARTVEC_CATALOGUE_UPDATED_AT_COLUMN="updated_at", ARTVEC_CATALOGUE_FACETS="era,artist",
               ARTVEC_CATALOGUE_IMAGE_ROOT=str(root))
    for key, value in env.items():
        if key.startswith("ARTVEC_"):        # undone after the test: no leak into later tests
            monkeypatch.setenv(key, value)
    run_cli("init", env=env)
    return root


def add_pictures(engine, root: Path, ids, era: str = "1860s", artist: str = "Doré") -> None:
    with engine.begin() as connection:
        for artwork_id in ids:
            make_picture(root / f"{artwork_id}.png", artwork_id)
            connection.execute(text("insert into public.artworks (id, image_path, era, artist) values (:i, :p, :e, :a)"),
                               {"i": artwork_id, "p": f"{artwork_id}.png", "e": era, "a": artist})


def stored(engine) -> dict:
    with engine.connect() as connection:
        return {row[0]: row[1:] for row in connection.execute(text(
            "select artwork_id, config_id, updated_at, facets, image_sha256 from artvec.embeddings"))}


def run_sync(**options):
    return sync(Settings.load(), SyncOptions(batch_size=options.pop("batch_size", 4), **options))


def test_first_sync_then_nothing_to_do(catalogue, engine):
    add_pictures(engine, catalogue, range(1, 7))
    first = run_sync()
    assert (first.embedded, first.failed, first.exit_code) == (6, 0, 0)
    rows = stored(engine)
    assert set(rows) == set(range(1, 7))
    assert all(row[2] == {"era": "1860s", "artist": "Doré"} for row in rows.values())
    with engine.connect() as connection:
        norms = connection.execute(text("select vector_norm(style), vector_norm(colour) from artvec.embeddings")).all()
    assert all(abs(style - 1) < 1e-3 and abs(colour - 1) < 1e-3 for style, colour in norms)
    second = run_sync()
    assert (second.embedded, second.unchanged, second.planned) == (0, 6, {})
    assert stored(engine) == rows


def test_changed_picture_only_it_is_recomputed(catalogue, engine):
    add_pictures(engine, catalogue, range(1, 6))
    run_sync()
    before = stored(engine)
    make_picture(catalogue / "3.png", 999)                       # new bytes
    os.utime(catalogue / "4.png", ns=(1, 1))                      # touched, same bytes
    report = run_sync()
    after = stored(engine)
    assert report.embedded == 1 and report.unchanged == 4
    assert after[3][3] != before[3][3]
    assert after[4][3] == before[4][3]
    assert {k: v for k, v in after.items() if k not in (3, 4)} == {k: v for k, v in before.items() if k not in (3, 4)}
    assert run_sync().planned == {}                                 # the touched stamp was recorded


def test_updated_at_and_facet_changes(catalogue, engine):
    add_pictures(engine, catalogue, range(1, 5))
    run_sync()
    with engine.begin() as connection:
        connection.execute(text("update public.artworks set era = '1900s' where id = 2"))
        connection.execute(text("update public.artworks set updated_at = now() + interval '1 day' where id = 3"))
    report = run_sync()
    assert report.planned == {"changed": 1}            # 3: updated_at newer; same bytes, so not re-embedded
    assert report.embedded == 0 and report.unchanged >= 1
    assert stored(engine)[2][2]["era"] == "1900s"        # facets follow the catalogue without re-embedding


def test_deleted_rows_lose_their_embeddings(catalogue, engine):
    add_pictures(engine, catalogue, range(1, 6))
    run_sync()
    with engine.begin() as connection:
        connection.execute(text("delete from public.artworks where id in (2, 5)"))
    report = run_sync()
    assert report.deleted == 2 and set(stored(engine)) == {1, 3, 4}


def test_configuration_change_recomputes_everything(catalogue, engine, monkeypatch):
    add_pictures(engine, catalogue, range(1, 5))
    first = run_sync()
    monkeypatch.setenv("ARTVEC_EMBEDDING_COLOUR_WEIGHT", "0.8")
    second = run_sync()
    assert second.config_id != first.config_id
    assert second.planned == {"config": 4} and second.embedded == 4
    assert second.switch["activated"] and second.active_config_id == second.config_id
    assert {row[0] for row in stored(engine).values()} == {second.config_id}
    with engine.connect() as connection:
        models = set(connection.execute(text("select config_id from artvec.models")).scalars())
    assert models == {first.config_id, second.config_id}


def test_bad_pictures_are_recorded_and_the_rest_synced(catalogue, engine, env):
    add_pictures(engine, catalogue, range(1, 4))
    (catalogue / "empty.jpg").write_bytes(b"")
    (catalogue / "text.jpg").write_text("this is not a picture")
    good = catalogue / "1.png"
    (catalogue / "truncated.png").write_bytes(good.read_bytes()[:200])
    with engine.begin() as connection:
        for artwork_id, path in [(10, "empty.jpg"), (11, "text.jpg"), (12, "truncated.png"), (13, "missing.png")]:
            connection.execute(text("insert into public.artworks (id, image_path) values (:i, :p)"),
                               {"i": artwork_id, "p": path})
    result = run_cli("sync", env=env, check=False)
    assert result.returncode == 4, result.stderr
    assert "3 embedded" in result.stdout and "4 failed" in result.stdout
    assert set(stored(engine)) == {1, 2, 3}
    listed = json.loads(run_cli("failures", "--json", env=env).stdout)
    reasons = {row["artwork_id"]: row["reason"] for row in listed}
    assert set(reasons) == {10, 11, 12, 13}
    assert reasons[10].startswith("empty") and reasons[13].startswith("not found")
    assert reasons[11].startswith("unsupported") and reasons[12].startswith("corrupt")
    assert all("\n" not in reason for reason in reasons.values())
    again = run_cli("sync", env=env)                     # failed pictures are not retried by default
    assert "0 embedded" in again.stdout and "4 failed before" in again.stdout
    retried = run_cli("sync", "--retry-failed", env=env, check=False)
    assert retried.returncode == 4 and "4 failed" in retried.stdout
    attempts = {row["artwork_id"]: row["attempts"] for row in json.loads(run_cli("failures", "--json", env=env).stdout)}
    assert set(attempts.values()) == {2}
    make_picture(catalogue / "missing.png", 13)           # the source appears: retried without the flag
    fixed = run_cli("sync", env=env, check=False)
    assert "1 embedded" in fixed.stdout and 13 in stored(engine)
    status = json.loads(run_cli("status", "--json", env=env).stdout)
    assert status["failed"] == 3 and status["last_sync"]["embedded"] == 1
    assert {row["reason"] for row in status["top_reasons"]} == {"empty", "unsupported", "corrupt"}


def test_dry_run_and_limit(catalogue, engine, env):
    add_pictures(engine, catalogue, range(1, 8))
    dry = run_cli("sync", "--dry-run", env=env)
    assert "would embed 7 new" in dry.stdout and stored(engine) == {}
    limited = run_cli("sync", "--limit", "3", "--decode-workers", "3", env=env)
    assert "3 embedded" in limited.stdout and len(stored(engine)) == 3
    assert "(cpu, 3 decode workers)" in limited.stdout
    bad = run_cli("sync", env={**env, "ARTVEC_SYNC_DECODE_WORKERS": "0"}, check=False)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert "sync.decode_workers: 0 is not a number of pictures to decode at once" in bad.stderr
    rest = json.loads(run_cli("sync", "--json", env={**env, "ARTVEC_SYNC_DECODE_WORKERS": "1"}).stdout)
    assert rest["embedded"] == 4 and rest["exit_code"] == 0 and len(stored(engine)) == 7
    assert rest["device"] == "cpu" and rest["decode_workers"] == 1


def test_catalogue_mapping_errors_are_one_line(catalogue, env):
    cases = [({"ARTVEC_CATALOGUE_TABLE": "public.nope"}, "does not exist"),
             ({"ARTVEC_CATALOGUE_IMAGE_COLUMN": "nope"}, "nope"),
             ({"ARTVEC_CATALOGUE_ID_TYPE": "uuid"}, "catalogue.id_type"),
             ({"ARTVEC_CATALOGUE_TABLE": "public.artworks; drop table x"}, "not a valid SQL identifier")]
    for change, expected in cases:
        result = run_cli("sync", env={**env, **change}, check=False)
        assert result.returncode == 2, (change, result.stdout, result.stderr)
        assert expected in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_catalogue_as_a_query_with_a_join(catalogue, engine, env):
    add_pictures(engine, catalogue, range(1, 4))
    with engine.begin() as connection:
        connection.execute(text("create table public.makers (artwork_id bigint, name text)"))
        connection.execute(text("insert into public.makers values (1, 'Crane'), (2, 'Morris'), (3, 'Crane')"))
    query = ("select a.id, a.image_path, a.updated_at, a.era, m.name as artist "
             "from public.artworks a join public.makers m on m.artwork_id = a.id")
    report_env = {key: value for key, value in env.items() if key != "ARTVEC_CATALOGUE_TABLE"}
    result = run_cli("sync", "--json", env={**report_env, "ARTVEC_CATALOGUE_QUERY": query})
    assert json.loads(result.stdout)["embedded"] == 3
    assert {row[2]["artist"] for row in stored(engine).values()} == {"Crane", "Morris"}


def wait_for_rows(engine, minimum: int, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            count = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
        if count >= minimum:
            return count
        time.sleep(0.05)
    raise AssertionError("sync made no progress")


SLOWER = {"ARTVEC_EMBEDDING_IMAGE_SIZE": "160"}   # big enough that a batch takes a moment


def sync_process(env) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("artvec")
    return subprocess.Popen([str(exe), "sync", "--batch-size", "2", "--json"], env={**env, **SLOWER},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_sync_resumes_and_every_picture_is_there_once(catalogue, engine, env):
    total = 40
    add_pictures(engine, catalogue, range(1, total + 1))
    process = sync_process(env)
    done_before_kill = wait_for_rows(engine, 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with engine.connect() as connection:
        partial = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
    assert done_before_kill <= partial < total and partial % 2 == 0   # whole batches only
    resumed = json.loads(run_cli("sync", "--json", env={**env, **SLOWER}).stdout)
    assert resumed["embedded"] == total - partial                     # nothing done twice
    with engine.connect() as connection:
        ids = list(connection.execute(text("select artwork_id from artvec.embeddings")).scalars())
    assert sorted(ids) == list(range(1, total + 1))


def test_two_workers_share_the_work(catalogue, engine, env):
    total = 30
    add_pictures(engine, catalogue, range(1, total + 1))
    workers = [sync_process(env) for _ in range(2)]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    assert sum(report["embedded"] for report in reports) == total       # no picture embedded twice
    assert all(report["embedded"] > 0 for report in reports)             # both did work
    assert set(stored(engine)) == set(range(1, total + 1))


class PictureServer(http.server.BaseHTTPRequestHandler):
    pictures: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if self.path == "/slow.png":
            time.sleep(3)
        body = self.pictures.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except BrokenPipeError:          # the client gave up (the timeout test)
            pass

    def log_message(self, *args):
        pass


def test_images_by_url(catalogue, engine, env, tmp_path):
    for artwork_id in (1, 2, 3):
        make_picture(tmp_path / f"{artwork_id}.png", artwork_id)
        PictureServer.pictures[f"/{artwork_id}.png"] = (tmp_path / f"{artwork_id}.png").read_bytes()
    PictureServer.pictures["/slow.png"] = PictureServer.pictures["/1.png"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PictureServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with engine.begin() as connection:
            for artwork_id, name in [(1, "1.png"), (2, "2.png"), (3, "3.png"), (4, "gone.png"), (5, "slow.png")]:
                connection.execute(text("insert into public.artworks (id, image_path) values (:i, :p)"),
                                   {"i": artwork_id, "p": f"{base}/{name}"})
        result = run_cli("sync", env={**env, "ARTVEC_SYNC_HTTP_TIMEOUT": "0.5", "ARTVEC_SYNC_HTTP_RETRIES": "1"},
                         check=False)
    finally:
        server.shutdown()
    assert result.returncode == 4
    assert set(stored(engine)) == {1, 2, 3}
    reasons = {row["artwork_id"]: row["reason"] for row in json.loads(run_cli("failures", "--json", env=env).stdout)}
    assert "HTTP 404" in reasons[4]
    assert "timed out" in reasons[5] and "2 attempts" in reasons[5]


def test_full_rehashes_and_reembeds_only_changed_bytes(catalogue, engine):
    add_pictures(engine, catalogue, range(1, 4))
    bmp = catalogue / "9.bmp"                      # uncompressed: another picture, the same size
    make_picture(bmp, 9)
    with engine.begin() as connection:
        connection.execute(text("insert into public.artworks (id, image_path) values (9, '9.bmp')"))
    run_sync()
    before = stored(engine)
    info = bmp.stat()
    make_picture(bmp, 99)
    os.utime(bmp, ns=(info.st_atime_ns, info.st_mtime_ns))      # a change size+mtime can't see
    assert bmp.stat().st_size == info.st_size
    assert run_sync().planned == {}                                # the cheap check sees nothing
    full = run_sync(full=True)
    assert full.planned == {"check": 4}
    assert full.embedded == 1 and full.unchanged == 3
    after = stored(engine)
    assert after[9][3] != before[9][3] and all(after[i] == before[i] for i in (1, 2, 3))
