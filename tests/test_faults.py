"""Faults a real library throws at `artvec sync`: malformed locations, pictures that break or hang a
decoder, kills at random moments, dropped connections, a restarted server, killed workers.

Real server, real model, real CLI, small pictures. After every scenario the same invariants hold
(`assert_consistent`): every good picture embedded exactly once, every bad one in artvec.failures
with a one-line reason, none both, no advisory locks and no `running` sync runs left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, text

import fuzz
from helpers import run_cli
from test_sync import add_pictures, catalogue, make_picture  # noqa: F401 - a fixture

SLOW = {"ARTVEC_EMBEDDING_IMAGE_SIZE": "128"}    # a batch takes a moment: faults land mid-sync
FAST = {"ARTVEC_EMBEDDING_IMAGE_SIZE": "64"}     # where no fault needs a moment to land


def add_rows(engine, rows: dict) -> None:
    """Catalogue rows id -> image location, as they come (no picture made)."""
    with engine.begin() as connection:
        for artwork_id, location in rows.items():
            connection.execute(text("insert into public.artworks (id, image_path) values (:i, :p)"),
                               {"i": artwork_id, "p": location})


def failure_reasons(engine) -> dict:
    with engine.connect() as connection:
        return dict(connection.execute(text("select artwork_id, reason from artvec.failures")).all())


def assert_consistent(engine, good: set, bad: set) -> None:
    with engine.connect() as connection:
        ids = list(connection.execute(text("select artwork_id from artvec.embeddings")).scalars())
        locks = connection.execute(text("""
            select count(*) from pg_locks where locktype = 'advisory'
              and database = (select oid from pg_database where datname = current_database())""")).scalar()
        running = connection.execute(text("select count(*) from artvec.sync_runs where state = 'running'")).scalar()
    reasons = failure_reasons(engine)
    assert len(ids) == len(set(ids)) and set(ids) == good, sorted(set(ids) ^ good)
    assert set(reasons) == bad, sorted(set(reasons) ^ bad)
    assert all(reason and "\n" not in reason for reason in reasons.values())
    assert (locks, running) == (0, 0)


def assert_clean(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def sync_cli(env, *args, extra: dict | None = None, check_code: int | None = None) -> subprocess.CompletedProcess:
    result = run_cli("sync", "--batch-size", "4", *args, env={**env, **SLOW, **(extra or {})}, check=False)
    assert_clean(result)
    if check_code is not None:
        assert result.returncode == check_code, result.stdout + result.stderr
    return result


def slow_png(path: Path, side: int = 12000) -> None:
    """A small file that takes the decoder a second: a zlib bomb under the pixel limit."""
    Image.new("L", (side, side), 0).save(path, "PNG", compress_level=9)


def test_malformed_locations_and_bad_files_are_each_their_own_failure(catalogue, engine, env):
    """Regression: `http://[bad/x` raised ValueError out of the reader threads and stopped every run."""
    add_pictures(engine, catalogue, range(1, 5))
    (catalogue / "folder.png").mkdir()
    os.mkfifo(catalogue / "pipe.png")                     # would block a reader forever
    (catalogue / "nul.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00" * 4)
    locked = catalogue / "locked.png"
    locked.write_text("not a picture either")
    locked.chmod(0)
    slow_png(catalogue / "slow.png")
    bad = {10: "http://[bad/x", 11: "http://exa mple.org/x.png", 12: "http://:99999/x.png", 13: "https://",
           14: "x" * 5000 + ".png", 15: "folder.png", 16: "pipe.png", 17: "/dev/zero", 18: "/proc/1/mem",
           19: "nul.png", 20: "locked.png", 21: "slow.png", 22: "", 23: "missing.png"}
    add_rows(engine, bad)
    result = sync_cli(env, extra={**FAST, "ARTVEC_SYNC_DECODE_TIMEOUT": "0.2"}, check_code=4)
    assert "4 embedded" in result.stdout and f"{len(bad)} failed" in result.stdout
    assert_consistent(engine, set(range(1, 5)), set(bad))
    reasons = failure_reasons(engine)
    assert "malformed URL" in reasons[10] and "Invalid IPv6 URL" in reasons[10]
    assert "malformed URL" in reasons[11] and "malformed URL" in reasons[12] and "malformed URL" in reasons[13]
    assert "too long" in reasons[14] and len(reasons[14]) < 1100
    assert "folder" in reasons[15]
    assert "not a regular file" in reasons[16] and "not a regular file" in reasons[17]
    assert "cut off" in reasons[21]
    again = sync_cli(env, extra=FAST, check_code=0)      # recorded: the next run does not trip on them
    assert "0 embedded" in again.stdout and f"{len(bad)} failed before" in again.stdout


def start_sync(env, extra: dict | None = None, batch_size: int = 2) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("artvec")
    return subprocess.Popen([str(exe), "sync", "--batch-size", str(batch_size), "--json"],
                            env={**env, **SLOW, **(extra or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    assert "Traceback" not in err, err
    return process.returncode, out, err


def terminate_sync_connections(engine) -> int:
    """pg_terminate_backend on every other session of the test's database: the sync's."""
    with engine.connect() as connection:
        return connection.execute(text("""
            select count(pg_terminate_backend(pid)) from pg_stat_activity
            where datname = current_database() and pid <> pg_backend_pid()""")).scalar()


def wait_for_rows(engine, minimum: int, *processes: subprocess.Popen, timeout: float = 600) -> None:
    """Until the store holds ``minimum`` rows; fails at once if the syncs watched have all exited."""
    deadline = time.monotonic() + timeout
    while count_rows(engine) < minimum:
        if processes and all(process.poll() is not None for process in processes):
            raise AssertionError(f"the sync exited early: {processes[0].communicate()[1]}")
        assert time.monotonic() < deadline, "the sync made no progress"
        time.sleep(0.05)


def count_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("select count(*) from artvec.embeddings")).scalar()


QUICK_RETRY = {"ARTVEC_SYNC_DB_RETRY_WAIT": "0.1"}


def test_terminated_connections_are_retried_and_every_picture_written_once(catalogue, engine, env):
    """Regression: pg_terminate_backend mid-sync ended in psycopg.errors.AdminShutdown and exit 1."""
    total = 16
    add_pictures(engine, catalogue, range(1, total + 1))
    add_rows(engine, {100: "http://[bad/x", 101: "missing.png"})
    process = start_sync(env, QUICK_RETRY)
    terminated = 0
    for minimum in (2, 6, 10):
        wait_for_rows(engine, minimum, process)
        terminated += terminate_sync_connections(engine)
    code, out, err = finish(process)
    assert code == 4, err
    report = json.loads(out)
    assert terminated >= 3
    assert report["embedded"] + report["left_to_others"] >= total and report["failed"] == 2
    assert_consistent(engine, set(range(1, total + 1)), {100, 101})
    with engine.connect() as connection:
        state = connection.execute(text("select state from artvec.sync_runs order by run_id desc")).scalar()
    assert state == "finished"


def test_database_that_stays_away_is_one_line_and_exit_3_then_the_next_run_resumes(catalogue, engine, env):
    total = 10
    add_pictures(engine, catalogue, range(1, total + 1))
    process = start_sync(env, {"ARTVEC_SYNC_DB_RETRIES": "0"})
    wait_for_rows(engine, 2, process)
    terminate_sync_connections(engine)
    code, out, err = finish(process)
    assert code == 3 and err.startswith("error: lost the database connection"), err
    assert err.count("\n") == 1
    partial = count_rows(engine)
    assert partial < total
    resumed = sync_cli(env, "--json", check_code=0)
    assert json.loads(resumed.stdout)["embedded"] == total - partial
    assert_consistent(engine, set(range(1, total + 1)), set())


def states(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("select state from artvec.sync_runs order by run_id")).scalars())


def test_kills_at_random_moments_then_resume(catalogue, engine, env):
    total, rng = 48, random.Random(11)
    add_pictures(engine, catalogue, range(1, total + 1))
    add_rows(engine, {100: "http://[bad/x"})
    for _ in range(3):
        runs_before = len(states(engine))
        process = start_sync(env)
        time.sleep(rng.uniform(1.0, 4.0))                 # model loading, planning, mid-batch, writing
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = process.returncode == -signal.SIGKILL   # else it had finished first (a fast machine)
        status = json.loads(run_cli("status", "--json", env=env).stdout)
        assert "running" not in states(engine)            # the killed run's worker is gone: interrupted
        this_run = states(engine)[runs_before:]          # none if it was killed before it registered
        if this_run == ["finished"]:                      # it had recorded its end before the kill landed
            assert_consistent(engine, set(range(1, total + 1)), {100})
        else:
            assert killed and this_run in ([], ["interrupted"])
        if this_run:
            assert status["last_sync"]["state"] == this_run[0]
    sync_cli(env, check_code=4 if 100 not in failure_reasons(engine) else 0)
    assert_consistent(engine, set(range(1, total + 1)), {100})
    assert states(engine)[-1] == "finished" and set(states(engine)[:-1]) <= {"interrupted", "finished"}
    assert "interrupted" in states(engine)                # at least one kill landed mid-run


def test_ctrl_c_mid_sync_says_so_in_one_line_records_the_run_interrupted_and_the_next_run_resumes(
        catalogue, engine, env):
    total = 16
    add_pictures(engine, catalogue, range(1, total + 1))
    process = start_sync(env)
    wait_for_rows(engine, 2, process)
    process.send_signal(signal.SIGINT)
    code, _, err = finish(process)
    assert code == 130, err
    assert err.splitlines()[-1] == "interrupted"
    assert states(engine) == ["interrupted"]            # said by the run itself, not left `running`
    partial = count_rows(engine)
    assert 2 <= partial < total
    resumed = sync_cli(env, "--json", check_code=0)
    assert json.loads(resumed.stdout)["embedded"] == total - partial
    assert_consistent(engine, set(range(1, total + 1)), set())


def test_two_workers_one_killed(catalogue, engine, env):
    total = 12
    add_pictures(engine, catalogue, range(1, total + 1))
    survivor, victim = start_sync(env), start_sync(env)
    wait_for_rows(engine, 4, survivor, victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    code, out, _ = finish(survivor)
    assert code == 0 and json.loads(out)["embedded"] > 0
    running_states = states(engine)
    assert running_states.count("finished") == 1
    sync_cli(env, check_code=0)                            # picks up what the victim held when killed
    assert_consistent(engine, set(range(1, total + 1)), set())
    assert states(engine).count("interrupted") == 1


def add_corpus(engine, entries: dict, first_id: int = 1000) -> dict[int, "fuzz.Entry"]:
    by_id = {first_id + index: entry for index, entry in enumerate(entries.values())}
    add_rows(engine, {artwork_id: entry.location for artwork_id, entry in by_id.items()})
    return by_id


def assert_corpus_outcome(engine, by_id: dict) -> None:
    with engine.connect() as connection:
        embedded = list(connection.execute(text("select artwork_id from artvec.embeddings")).scalars())
    failed = failure_reasons(engine)
    assert len(embedded) == len(set(embedded)) and not set(embedded) & set(failed)
    assert set(embedded) | set(failed) == set(by_id)                  # nothing lost
    assert {i for i, entry in by_id.items() if entry.expect == "good"} <= set(embedded)
    assert {i for i, entry in by_id.items() if entry.expect == "bad"} <= set(failed)
    assert all(reason and "\n" not in reason for reason in failed.values())


def test_fuzz_corpus(catalogue, engine, env):
    entries = fuzz.make_corpus(catalogue, 48, seed=5, side=48, good=2)
    by_id = add_corpus(engine, entries)
    result = sync_cli(env, "--json", extra=FAST, check_code=4)
    report = json.loads(result.stdout)
    assert report["embedded"] + report["failed"] == len(by_id)
    assert_corpus_outcome(engine, by_id)
    again = json.loads(sync_cli(env, "--json", extra=FAST, check_code=0).stdout)   # every outcome was recorded
    assert (again["embedded"], again["failed"], again["failed_skipped"]) == (0, 0, report["failed"])


def test_embedded_server_stopped_and_started_mid_sync(private_home, tmp_path):
    from artvec import db

    data_dir = private_home / db.EMBEDDED_DIR
    url = db.start_embedded(data_dir)
    root = tmp_path / "images"
    root.mkdir()
    clean = {key: value for key, value in os.environ.items() if not key.startswith("ARTVEC_")}
    env = {**clean, "ARTVEC_HOME": str(private_home), "ARTVEC_DATABASE_URL": url,
           "ARTVEC_CATALOGUE_TABLE": "public.artworks", "ARTVEC_CATALOGUE_IMAGE_COLUMN": "image_path",
           "ARTVEC_CATALOGUE_IMAGE_ROOT": str(root), **QUICK_RETRY}
    engine = create_engine(db.sqlalchemy_url(url), pool_pre_ping=True)
    try:
        with engine.begin() as connection:
            connection.execute(text("create table public.artworks (id bigint primary key, image_path text)"))
        run_cli("init", env=env)
        total = 12
        add_pictures_plain(engine, root, range(1, total + 1))
        process = start_sync(env)
        wait_for_rows(engine, 2, process)
        db.stop_embedded(data_dir)
        time.sleep(1.5)                                   # the sync finds nobody there for a while
        run_cli("db", "url", env={key: value for key, value in env.items() if key != "ARTVEC_DATABASE_URL"})
        code, out, err = finish(process)
        assert code == 0, err
        assert_consistent(engine, set(range(1, total + 1)), set())
    finally:
        engine.dispose()


def add_pictures_plain(engine, root: Path, ids) -> None:
    with engine.begin() as connection:
        for artwork_id in ids:
            make_picture(root / f"{artwork_id}.png", artwork_id)
            connection.execute(text("insert into public.artworks (id, image_path) values (:i, :p)"),
                               {"i": artwork_id, "p": f"{artwork_id}.png"})


def test_index_rebuild_cut_off_by_a_lost_connection_is_finished(catalogue, engine, env):
    add_pictures(engine, catalogue, range(1, 5))
    sync_cli(env, extra=FAST, check_code=0)
    run_cli("index", env=env)
    with engine.connect() as blocker:                      # an open writer: the concurrent build waits for it
        blocker.execute(text("update artvec.embeddings set facets = facets where artwork_id = 1"))
        exe = Path(sys.executable).with_name("artvec")
        process = subprocess.Popen([str(exe), "index", "--rebuild"], env={**env, **QUICK_RETRY},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                waiting = connection.execute(text("""
                    select pid from pg_stat_activity
                    where datname = current_database() and query ilike 'create index concurrently%'
                      and wait_event_type = 'Lock'""")).scalars().first()
                if waiting:
                    assert connection.execute(text("select pg_terminate_backend(:p)"), {"p": waiting}).scalar()
                    invalid = invalid_indexes(connection)
                    break
            time.sleep(0.05)
        assert waiting and invalid, "the rebuild never waited"    # the cut-off build left an invalid index
        blocker.rollback()
    code, out, err = finish(process, timeout=120)
    assert code == 0, err
    assert "dropping what an interrupted rebuild left" in out and "rebuilt" in out
    with engine.connect() as connection:
        assert invalid_indexes(connection) == []
        names = list(connection.execute(text(
            "select indexname from pg_indexes where schemaname = 'artvec' and indexname like '%\\_new'")).scalars())
    assert names == []


def invalid_indexes(connection) -> list[str]:
    """Invalid indexes on the active configuration's table (artvec.embeddings is a view on it)."""
    return list(connection.execute(text("""
        select c.relname from pg_index i join pg_class c on c.oid = i.indexrelid
        where i.indrelid = (select to_regclass('artvec.' || quote_ident(table_name))
                            from artvec.models where active)
          and not i.indisvalid""")).scalars())
