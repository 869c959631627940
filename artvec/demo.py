"""``artvec demo``: the whole job on a sample catalogue, with no server, network or pictures of your own.

It writes generated pictures to ``<home>/demo/images``, creates a schema ``demo`` (artists, eras,
pictures — shaped like a library's catalogue), then runs init, sync and index, and shows "more
like this" three ways and a contact sheet. Re-running reuses everything already there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sqlalchemy import text

from . import clusters, db, demo_pictures, indexes, maps, search, sheet, store, tables
from .errors import ArtvecError
from .sync import SyncOptions, SyncReport, sync

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .config import Settings

CATALOGUE_QUERY = """
    select p.id, p.image_path, p.updated_at, e.label as era, a.name as artist
    from demo.pictures p
    join demo.artists a on a.id = p.artist_id
    join demo.eras e on e.id = p.era_id"""


@dataclass
class Example:
    title: str
    query_id: int
    filters: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)


@dataclass
class DemoResult:
    images: Path
    sheet: Path
    report: SyncReport
    examples: list[Example]
    groups: dict = field(default_factory=dict)
    map: Path | None = None


def demo_settings(settings: "Settings", images: Path) -> "Settings":
    for key, value in {"catalogue.table": None, "catalogue.query": CATALOGUE_QUERY, "catalogue.id_column": "id",
                       "catalogue.id_type": "bigint", "catalogue.image_column": "image_path",
                       "catalogue.updated_at_column": "updated_at", "catalogue.facets": ["era", "artist"],
                       "catalogue.image_root": str(images)}.items():
        settings.set(key, value, "artvec demo")
    return settings


def write_settings(settings: "Settings", folder: Path) -> Path:
    """``<home>/demo/artvec.toml``: the demo catalogue's settings, so that plain ``artvec sync``
    (and the rest) run from that folder work on the demo store too."""
    catalogue = settings.section("catalogue")
    lines = ["# written by artvec demo: run artvec commands from this folder to use the demo catalogue",
             "[catalogue]"]
    for key, value in catalogue.items():
        if key == "query":
            lines.append(f"query = '''{value}'''")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    path = folder / "artvec.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pictures(folder: Path) -> int:
    """Render the demo pictures that are not on disk yet; returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for row in demo_pictures.catalogue():
        path = folder / row["file"]
        if not path.exists():
            partial = path.with_suffix(".part")
            demo_pictures.render(row).save(partial, format="PNG")
            partial.replace(path)
            written += 1
    return written


def create_catalogue(engine: "Engine") -> None:
    rows = demo_pictures.catalogue()
    artists = list(demo_pictures.ARTISTS)
    eras = sorted({era for _, era in demo_pictures.ARTISTS.values()})
    with engine.begin() as connection:
        connection.execute(text("create schema if not exists demo"))
        connection.execute(text("create table if not exists demo.artists (id int primary key, name text not null)"))
        connection.execute(text("create table if not exists demo.eras (id int primary key, label text not null)"))
        connection.execute(text("""
            create table if not exists demo.pictures (
                id bigint primary key, title text not null, image_path text not null,
                artist_id int not null references demo.artists (id), era_id int not null references demo.eras (id),
                updated_at timestamptz not null default now())"""))
        connection.execute(text("insert into demo.artists values (:id, :name) on conflict do nothing"),
                           [{"id": i + 1, "name": name} for i, name in enumerate(artists)])
        connection.execute(text("insert into demo.eras values (:id, :label) on conflict do nothing"),
                           [{"id": i + 1, "label": label} for i, label in enumerate(eras)])
        connection.execute(text("""
            insert into demo.pictures (id, title, image_path, artist_id, era_id)
            values (:id, :title, :file, :artist_id, :era_id) on conflict do nothing"""),
            [{**row, "artist_id": artists.index(row["artist"]) + 1, "era_id": eras.index(row["era"]) + 1}
             for row in rows])


def refuse_foreign_embeddings(engine: "Engine") -> None:
    """The demo syncs the store with its own catalogue: never at the cost of a real one's vectors."""
    with engine.connect() as connection:
        if connection.execute(text("select to_regclass('demo.pictures')")).scalar() is None:
            foreign = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
        else:
            foreign = connection.execute(text("""
                select count(*) from artvec.embeddings e
                where e.artwork_id::text not in (select id::text from demo.pictures)""")).scalar()
    if foreign:
        raise ArtvecError(f"this database holds {foreign} embeddings of another catalogue, which the demo "
                          "would delete; run it on a database of its own, e.g. ARTVEC_HOME=/tmp/artvec-demo artvec demo")


def titles(engine: "Engine") -> dict[int, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("select id, title from demo.pictures")).all())


def run_examples(settings: "Settings", engine: "Engine") -> list[Example]:
    examples = [Example("More like this", 1),
                Example("More like this, within the 1830s", 12, {"era": "1830s"}),
                Example("More like this, by Katsushika Hokusai only", 19, {"artist": "Katsushika Hokusai"})]
    for example in examples:
        example.rows = search.search(settings, artwork_id=example.query_id, filters=example.filters, k=5,
                                     engine=engine)
    return examples


def contact_sheet(settings: "Settings", engine: "Engine", example: Example, out: Path) -> Path:
    root = settings.get("catalogue.image_root")
    names = titles(engine)
    location = search.query_location(engine, example.query_id)
    query = (f"query #{example.query_id}\n{names[example.query_id]}", sheet.resolve_location(location, root))
    neighbours = [(f"#{row['artwork_id']} d={row['distance']:.3f}\n{names.get(row['artwork_id'], '')}",
                   sheet.resolve_location(row.get("image_location"), root)) for row in example.rows]
    return sheet.write_sheet(query, neighbours, out)


def demo(settings: "Settings", engine: "Engine", say: Callable[[str], None] = print, device: str = "cpu") -> DemoResult:
    """The whole demo on ``engine``'s database (the command's one engine; its schema is made here)."""
    home = settings.home / "demo"
    images = home / "images"
    written = write_pictures(images)
    say(f"pictures: {len(demo_pictures.catalogue())} in {images} ({written} generated now)")
    settings = demo_settings(settings, images)
    write_settings(settings, home)
    store.init(settings, engine=engine)
    refuse_foreign_embeddings(engine)
    create_catalogue(engine)
    say(f"catalogue: demo.artists, demo.eras, demo.pictures in {db.mask_url(db.libpq_url(engine.url.render_as_string(False)))}")
    report = sync(settings, SyncOptions(device=device, batch_size=8), engine=engine)
    say(f"sync: {report.embedded} embedded, {report.unchanged} unchanged, {report.failed} failed "
        f"({report.seconds:.1f} s)")
    built = indexes.index(settings, engine=engine, progress=lambda message: None)
    names = [entry["index"] for entry in built]
    columns = [c for c in tables.VECTOR_COLUMNS if any(name.endswith(f"_{c}_hnsw") for name in names)]
    say(f"index: HNSW on {', '.join(columns)}; database defaults for iterative scans set")
    examples = run_examples(settings, engine)
    out = contact_sheet(settings, engine, examples[0], home / "contact-sheet.png")
    # one group per manner: on 40 pictures silhouette settles on 4 groups for the 5 manners (README)
    groups = clusters.clusters(settings, k=len(demo_pictures.ARTISTS), engine=engine)
    map_out = Path(maps.build_map(settings, home / "map.png", engine=engine)["out"])
    return DemoResult(images, out, report, examples, groups, map_out)
