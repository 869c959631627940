"""Fault-injection benchmark: the long version of tests/test_faults.py.

    nice -n 10 python benchmarks/faults.py                  # embedded server in a temporary folder
    python benchmarks/faults.py --kills 20 --terminations 20 --restarts 5 --fuzz 2000

Each scenario runs the real `artvec sync` CLI (real server, real model, small pictures) on a fresh
database, injects its faults, runs `artvec sync` again to resume, then checks the store: every good
picture embedded exactly once, every bad one in artvec.failures with a reason, none both, no
traceback on stderr, no advisory locks or `running` sync runs left. Prints a table:

    scenario | faults injected | survived | pictures lost | duplicates | max RSS

"survived": faults after which the store ended consistent and no process printed a traceback.
"duplicates": pictures embedded more than once, from the runs' own counts (each batch's count is
committed with the batch, so a killed run's count is exact): sum over runs - distinct pictures.
"max RSS": the largest resident memory of any one sync process in the scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from artvec import db  # noqa: E402
from fuzz import make_corpus, picture  # noqa: E402

ARTVEC = Path(sys.executable).with_name("artvec")


@dataclass
class Outcome:
    name: str
    faults: int
    survived: int = 0
    lost: int = 0
    duplicates: int = 0
    max_rss: int = 0
    notes: list[str] = field(default_factory=list)


class Scenario:
    """A fresh database with a catalogue table, artvec initialised, pictures in a folder."""

    def __init__(self, server_url: str, work: Path, image_size: int, side: int):
        self.name = "f_" + uuid.uuid4().hex[:10]
        admin = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'create database "{self.name}"'))
        admin.dispose()
        base, _, query = server_url.partition("?")
        self.url = base.rsplit("/", 1)[0] + "/" + self.name + ("?" + query if query else "")
        self.engine = create_engine(db.sqlalchemy_url(self.url), pool_pre_ping=True)
        self.root = work / self.name
        self.root.mkdir(parents=True)
        self.side = side
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "ARTVEC_DATABASE_URL": self.url,
                    "ARTVEC_HOME": str(work / "home"), "ARTVEC_CATALOGUE_TABLE": "public.artworks",
                    "ARTVEC_CATALOGUE_IMAGE_COLUMN": "image_path", "ARTVEC_CATALOGUE_IMAGE_ROOT": str(self.root),
                    "ARTVEC_EMBEDDING_IMAGE_SIZE": str(image_size), "ARTVEC_SYNC_DB_RETRY_WAIT": "0.1"}
        with self.engine.begin() as connection:
            connection.execute(text("create table public.artworks (id bigint primary key, image_path text)"))
        subprocess.run([str(ARTVEC), "init"], env=self.env, check=True, capture_output=True)
        self.max_rss = 0
        self.tracebacks = 0

    def add_pictures(self, ids) -> set:
        rows = {}
        for artwork_id in ids:
            picture(artwork_id, self.side).save(self.root / f"{artwork_id}.png")
            rows[artwork_id] = f"{artwork_id}.png"
        self.add_rows(rows)
        return set(ids)

    def add_rows(self, rows: dict) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("insert into public.artworks (id, image_path) values (:i, :p)"),
                               [{"i": artwork_id, "p": location} for artwork_id, location in rows.items()])

    def start(self, batch_size: int = 4) -> subprocess.Popen:
        process = subprocess.Popen([str(ARTVEC), "sync", "--batch-size", str(batch_size), "--json"], env=self.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self.watch_memory, args=(process,), daemon=True).start()
        return process

    def watch_memory(self, process: subprocess.Popen) -> None:
        try:
            handle = psutil.Process(process.pid)
            while process.poll() is None:
                self.max_rss = max(self.max_rss, handle.memory_info().rss)
                time.sleep(0.05)
        except psutil.Error:
            pass

    def finish(self, process: subprocess.Popen, timeout: float = 1800) -> int:
        _, err = process.communicate(timeout=timeout)
        self.tracebacks += "Traceback" in err
        return process.returncode

    def kill(self, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        self.finish(process)

    def sync(self) -> int:
        return self.finish(self.start())

    def rows(self, count: int) -> int:
        with self.engine.connect() as connection:
            return connection.execute(text("select count(*) from artvec.embeddings")).scalar() >= count

    def wait_rows(self, count: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not self.rows(count) and time.monotonic() < deadline:
            time.sleep(0.05)

    def terminate_connections(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(text("""
                select count(pg_terminate_backend(pid)) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid()""")).scalar()

    def check(self, outcome: Outcome, good: set, bad: set, either: set = frozenset()) -> None:
        """Resume, then fill in lost, duplicates, max RSS, and survived (all faults, or none)."""
        self.sync()
        with self.engine.begin() as connection:
            connection.execute(text("select 1"))
            embedded = set(connection.execute(text("select artwork_id from artvec.embeddings")).scalars())
            failed = set(connection.execute(text("select artwork_id from artvec.failures where reason <> ''"))
                         .scalars())
            counted = connection.execute(text("select coalesce(sum(embedded), 0) from artvec.sync_runs")).scalar()
            locks = connection.execute(text("""
                select count(*) from pg_locks where locktype = 'advisory'
                  and database = (select oid from pg_database where datname = current_database())""")).scalar()
        subprocess.run([str(ARTVEC), "status", "--json"], env=self.env, check=True, capture_output=True)
        with self.engine.connect() as connection:
            running = connection.execute(text("select count(*) from artvec.sync_runs where state = 'running'")).scalar()
        outcome.lost = len(good - embedded) + len(bad - failed) + len((either - embedded) - failed)
        outcome.duplicates = counted - len(embedded)
        outcome.max_rss = self.max_rss
        consistent = (outcome.lost == 0 and outcome.duplicates == 0 and not embedded & failed and locks == 0
                      and running == 0 and not self.tracebacks and embedded <= good | either)
        outcome.survived = outcome.faults if consistent else 0
        if not consistent:
            outcome.notes.append(f"locks={locks} running={running} tracebacks={self.tracebacks} "
                                 f"both={len(embedded & failed)}")

    def drop(self, server_url: str) -> None:
        self.engine.dispose()
        admin = create_engine(db.sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'drop database if exists "{self.name}" with (force)'))
        admin.dispose()
        shutil.rmtree(self.root, ignore_errors=True)


def kills(scenario: Scenario, args, rng: random.Random) -> Outcome:
    outcome = Outcome(f"SIGKILL at a random moment, then resume (x{args.kills})", args.kills)
    good = scenario.add_pictures(range(1, args.pictures + 1))
    for _ in range(args.kills):
        process = scenario.start()
        time.sleep(rng.uniform(0.5, args.kill_window))
        scenario.kill(process)
    scenario.check(outcome, good, set())
    return outcome


def terminations(scenario: Scenario, args, rng: random.Random) -> Outcome:
    outcome = Outcome(f"pg_terminate_backend of the sync's connections (x{args.terminations})", args.terminations)
    good = scenario.add_pictures(range(1, args.pictures * 2 + 1))
    process = scenario.start(batch_size=2)
    scenario.wait_rows(2)
    for _ in range(args.terminations):
        time.sleep(rng.uniform(0.2, 1.5))
        if process.poll() is not None:
            outcome.notes.append("the sync finished before all terminations")
            break
        scenario.terminate_connections()
    code = scenario.finish(process)
    if code not in (0, 4):
        outcome.notes.append(f"the sync exited {code}")
    scenario.check(outcome, good, set())
    return outcome


def restarts(scenario: Scenario, args, rng: random.Random, data_dir: Path, home_env: dict) -> Outcome:
    outcome = Outcome(f"embedded server stopped and started mid-sync (x{args.restarts})", args.restarts)
    good = scenario.add_pictures(range(1, args.pictures * 2 + 1))
    process = scenario.start(batch_size=2)
    scenario.wait_rows(2)
    for _ in range(args.restarts):
        db.stop_embedded(data_dir)
        time.sleep(rng.uniform(0.5, 2.0))
        subprocess.run([str(ARTVEC), "db", "url"], env=home_env, check=True, capture_output=True)
        time.sleep(rng.uniform(1.0, 3.0))
    code = scenario.finish(process)
    if code not in (0, 4):
        outcome.notes.append(f"the sync exited {code}")
    scenario.check(outcome, good, set())
    return outcome


def workers(scenario: Scenario, args, count: int) -> Outcome:
    outcome = Outcome(f"{count} workers, one killed mid-sync", 1)
    good = scenario.add_pictures(range(1, args.pictures * 2 + 1))
    processes = [scenario.start() for _ in range(count)]
    scenario.wait_rows(8)
    scenario.kill(processes[0])
    for process in processes[1:]:
        scenario.finish(process)
    scenario.check(outcome, good, set())
    return outcome


def fuzz(scenario: Scenario, args) -> Outcome:
    entries = make_corpus(scenario.root, args.fuzz, seed=args.seed, side=args.side)
    ids = {artwork_id: entry for artwork_id, entry in enumerate(entries.values(), start=1)}
    pick = lambda expect: {artwork_id for artwork_id, entry in ids.items() if entry.expect == expect}  # noqa: E731
    good = pick("good")
    outcome = Outcome(f"fuzz: {args.fuzz:,} mutated files, {len(ids) - len(good) - args.fuzz} malformed "
                      f"locations, {len(good)} valid pictures", len(ids) - len(good))
    scenario.add_rows({artwork_id: entry.location for artwork_id, entry in ids.items()})
    scenario.sync()
    scenario.check(outcome, good, pick("bad"), pick("either"))
    with scenario.engine.connect() as connection:
        reasons = connection.execute(text("""
            select regexp_replace(reason, ':.*$', ''), count(*) from artvec.failures group by 1 order by 2 desc""")).all()
        embedded = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
    outcome.notes.append(f"{embedded - len(good)} mutated files still decoded and were embedded; failures: "
                         + ", ".join(f"{count} {reason}" for reason, count in reasons))
    return outcome


def table(outcomes: list[Outcome]) -> str:
    lines = ["| scenario | faults injected | survived | pictures lost | duplicates | max RSS |",
             "|---|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        lines.append(f"| {o.name} | {o.faults:,} | {o.survived:,} | {o.lost} | {o.duplicates} | "
                     f"{o.max_rss / 2**20:,.0f} MiB |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-window", type=float, default=12.0, help="kill within this many seconds of start")
    parser.add_argument("--terminations", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--fuzz", type=int, default=1200, help="mutated files in the fuzz corpus")
    parser.add_argument("--pictures", type=int, default=48, help="good pictures per scenario (x2 for some)")
    parser.add_argument("--side", type=int, default=64, help="picture side in pixels")
    parser.add_argument("--image-size", type=int, default=64, help="embedding.image_size")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", help="comma-separated scenarios: kills,terminations,restarts,workers,fuzz")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # stop the embedded server on the way out
    only = set((args.only or "kills,terminations,restarts,workers,fuzz").split(","))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="artvec-faults-"))
    home = work / "home"
    data_dir = home / db.EMBEDDED_DIR
    server_url = db.start_embedded(data_dir)
    home_env = {**os.environ, "PYTHONPATH": str(REPO), "ARTVEC_HOME": str(home)}
    home_env.pop("ARTVEC_DATABASE_URL", None)
    started = time.perf_counter()
    outcomes = []
    try:
        plans = [("kills", lambda s: kills(s, args, rng)),
                 ("terminations", lambda s: terminations(s, args, rng)),
                 ("restarts", lambda s: restarts(s, args, rng, data_dir, home_env)),
                 ("workers", lambda s: workers(s, args, 2)),
                 ("workers", lambda s: workers(s, args, 4)),
                 ("fuzz", lambda s: fuzz(s, args))]
        for name, run in plans:
            if name not in only:
                continue
            scenario = Scenario(server_url, work, args.image_size, args.side)
            began = time.perf_counter()
            outcome = run(scenario)
            scenario.drop(server_url)
            outcomes.append(outcome)
            print(f"{outcome.name}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        db.stop_embedded(data_dir)
        shutil.rmtree(work, ignore_errors=True)
    print(table(outcomes))
    for outcome in outcomes:
        if outcome.notes:
            print(f"\n{outcome.name}: {' '.join(outcome.notes)}")
    print(f"\n{args.pictures} pictures of {args.side} px (embedding.image_size {args.image_size}); "
          f"{time.perf_counter() - started:.0f} s in all")
    print(json.dumps([o.__dict__ for o in outcomes]), file=sys.stderr)


if __name__ == "__main__":
    main()
