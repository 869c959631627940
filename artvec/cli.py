"""The ``artvec`` admin tool: each command is a few lines over a library function of the same name.

Heavy imports (torch, SQLAlchemy, the embedded server) happen inside the commands,
so ``artvec --help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import ArtvecError

app = typer.Typer(help="Style and colour similarity for picture libraries, in PostgreSQL + pgvector.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="The database artvec uses.", no_args_is_help=True)
config_app = typer.Typer(help="artvec's configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

STATE: dict = {"debug": False}


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"artvec {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option("--config", help="artvec.toml to read (default: ./artvec.toml if present).")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="PostgreSQL URL (default: ARTVEC_DATABASE_URL, the config file, else the embedded server).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")] = False,
) -> None:
    STATE["debug"] = debug
    STATE["config"] = config
    STATE["overrides"] = {"database.url": database_url}


def settings(**overrides):
    from .config import Settings

    return Settings.load(STATE.get("config"), {**STATE.get("overrides", {}), **overrides})


def echo_json(value) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@app.command()
def init() -> None:
    """Create or upgrade artvec's schema (safe to run again)."""
    from . import store

    result = store.init(settings())
    typer.echo(f"artvec schema at revision {result['revision']} in {result['url']}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (psql accepts it)."""
    from . import db

    typer.echo(db.libpq_url(db.database_url(settings())))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (any later command starts it again)."""
    from . import db

    config = settings()
    if not db.is_embedded(config):
        raise ArtvecError("database.url is set: artvec only stops its own embedded server")
    data_dir = db.embedded_data_dir(config)
    typer.echo(f"stopped the embedded server in {data_dir}" if db.stop_embedded(data_dir)
               else f"the embedded server in {data_dir} is not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Where the database is and what artvec keeps in it."""
    from . import store

    info = store.db_status(settings())
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:>18}: {value}")


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Print the effective configuration and where each value came from (passwords hidden)."""
    rows = settings().rows()
    if as_json:
        echo_json({key: {"value": value, "source": source} for key, value, source in rows})
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        typer.echo(f"{key:<{width}}  {json.dumps(value, default=str):<40}  {source}")


@app.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(help="Picture files or folders (searched recursively).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write an N×D float32 .npy (input order) and the names beside it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of text.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pictures per model batch.")] = 8,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="Torch CPU threads.")] = None,
) -> None:
    """Embed pictures with the configured model and print or save their vectors."""
    from .embedding import embed_command

    typer.echo(embed_command(paths, out=out, json_out=as_json, device=device, batch_size=batch_size,
                             threads=threads, config=settings().embedding_config()))


@app.command()
def sync(
    table: Annotated[Optional[str], typer.Option("--table", help="Catalogue table or view (overrides catalogue.table).")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder that relative image paths are under.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Embed at most N pictures this run.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done; write nothing.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read and hash every picture; re-embed those whose bytes changed.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try pictures that failed before again.")] = False,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Pictures per committed batch.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu or cuda.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Keep embeddings in step with the catalogue: new, changed, deleted pictures, model changes.

    Exit codes: 0 all synced; 4 finished, but some pictures failed (see `artvec failures`);
    1-3 could not run (configuration, database)."""
    from .progress import Progress
    from .sync import SyncOptions, sync as run_sync

    config = settings(**{"catalogue.table": table, "catalogue.image_root": str(image_root) if image_root else None,
                         "sync.batch_size": batch_size, "sync.device": device})
    options = SyncOptions(limit=limit, dry_run=dry_run, full=full, retry_failed=retry_failed,
                          batch_size=config.get("sync.batch_size"), device=config.get("sync.device"),
                          progress=None if as_json else Progress("sync"))
    report = run_sync(config, options)
    echo_json(report_dict(report)) if as_json else typer.echo(report_text(report))
    raise typer.Exit(report.exit_code)


def report_dict(report) -> dict:
    from dataclasses import asdict

    return {**asdict(report), "pictures_per_second": round(report.rate, 2), "exit_code": report.exit_code}


def report_text(report) -> str:
    planned = ", ".join(f"{count} {reason}" for reason, count in sorted(report.planned.items())) or "nothing"
    if report.dry_run:
        return (f"dry run ({report.config_id}): would embed {planned}; would delete {report.deleted}; "
                f"{report.unchanged} unchanged, {report.failed_skipped} failed before (skipped)")
    lines = [f"error: {line}" for line in report.failures[:20]]
    if len(report.failures) > 20:
        lines.append(f"... and {len(report.failures) - 20} more (artvec failures)")
    lines.append(f"synced ({report.config_id}): {report.embedded} embedded, {report.unchanged} unchanged, "
                 f"{report.deleted} deleted, {report.failed} failed, {report.failed_skipped} failed before "
                 f"(skipped), {report.left_to_others} left to other workers; "
                 f"{report.seconds:.1f} s, {report.rate:.2f} pictures/s")
    return "\n".join(lines)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts by state and configuration, the last sync, the most common failure reasons."""
    from .sync import status as sync_status

    info = sync_status(settings())
    if as_json:
        echo_json(info)
        return
    typer.echo(f"active configuration: {info['active_config']}")
    for row in info["by_config"]:
        typer.echo(f"  embedded  {row['count']:>8}  {row['config_id']}")
    typer.echo(f"  failed    {info['failed']:>8}")
    last = info["last_sync"]
    typer.echo("last sync: " + ("never" if not last else
               f"{last['finished_at'] or last['started_at']} {last['state']} by {last['worker']}: "
               f"{last['embedded']} embedded, {last['deleted']} deleted, {last['failed']} failed"))
    for row in info["top_reasons"]:
        typer.echo(f"  {row['count']:>6} × {row['reason']}")


@app.command()
def failures(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most N.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List pictures that could not be embedded, newest first, with the reason."""
    from .sync import failures as list_failures

    rows = list_failures(settings(), limit)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['artwork_id']}\t{row['attempts']}×\t{row['last_failed_at']:%Y-%m-%d %H:%M}\t"
                   f"{row['image_location']}\t{row['reason']}")
    if not rows:
        typer.echo("no failures")


@app.command("index")
def index_command(
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build the indexes anew (concurrently) and swap them in.")] = False,
    maintenance_work_mem: Annotated[Optional[str], typer.Option("--maintenance-work-mem", help="Memory for the build, e.g. 2GB (default: what the graph needs, at most 2 GB).")] = None,
) -> None:
    """Build the HNSW and filter indexes and set the database's search defaults (safe to run again;
    a lost connection is retried, and a build it cut off is dropped and built again)."""
    from . import search, store
    from .reconnect import Retry

    config = settings()
    engine = store.engine_for_schema(config)
    try:
        Retry.from_settings(config).call(lambda: search.create_indexes(
            config, rebuild=rebuild, progress=typer.echo, maintenance_work_mem=maintenance_work_mem, engine=engine))
    finally:
        engine.dispose()


def settings_with_stored_facets():
    """Settings; without configured facets, those the sync stored (e.g. after `artvec demo`)."""
    from . import store

    config = settings()
    if not config.get("catalogue.facets"):
        engine = store.engine_for_schema(config)
        with engine.connect() as connection:
            config.set("catalogue.facets", store.facet_names(connection), "stored embeddings")
        engine.dispose()
    return config


@app.command("similar")
def similar_command(
    artwork_id: Annotated[Optional[str], typer.Argument(help="Catalogue id of the query picture.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Search with this picture file instead.")] = None,
    by: Annotated[str, typer.Option("--by", help="both | style | colour")] = "both",
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="Only pictures with facet=value (repeatable).")] = None,
    excludes: Annotated[Optional[list[str]], typer.Option("--exclude", help="Leave out pictures with facet=value (repeatable).")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many neighbours.")] = 12,
    through: Annotated[str, typer.Option("--through", help="Filter via 'facets' (default) or a join with the 'catalogue' table.")] = "facets",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a contact sheet PNG of the query and its neighbours.")] = None,
) -> None:
    """The pictures nearest to an artwork (or to a picture file), with distances and facets."""
    from . import search

    config = settings_with_stored_facets()
    found = search.find_similar(config, artwork_id, str(image) if image else None, by,
                                search.parse_filters(filters or []), search.parse_filters(excludes or []),
                                k, through)
    if sheet:
        write_similar_sheet(config, found, sheet)
    if as_json:
        echo_json(found["rows"])
        return
    facets = list(config.get("catalogue.facets") or [])
    typer.echo("  ".join([f"{'id':>12}", f"{'distance':>9}", *[f"{name:<16}" for name in facets]]).rstrip())
    for row in found["rows"]:
        values = [str((row["facets"] or {}).get(name, "")) for name in facets]
        typer.echo("  ".join([f"{row['artwork_id']!s:>12}", f"{row['distance']:9.4f}",
                              *[f"{value:<16}" for value in values]]).rstrip())


def write_similar_sheet(config, found: dict, out: Path) -> None:
    from .sheet import resolve_location, write_sheet

    root = config.get("catalogue.image_root")
    neighbours = [(f"{row['artwork_id']}\nd = {row['distance']:.4f}", resolve_location(row["image_location"], root))
                  for row in found["rows"]]
    query = (f"query {found['query']}"[:30], resolve_location(found["query_location"], root))
    write_sheet(query, neighbours, out)
    typer.echo(f"contact sheet: {out}", err=True)


@app.command("grant-read")
def grant_read_command(role: Annotated[str, typer.Argument(help="Database role of the website.")]) -> None:
    """Give a database role read-only access to artvec's schema (now and for future tables)."""
    from . import search, store

    engine = store.engine_for_schema(settings())
    try:
        for statement in search.grant_read(engine, role):
            typer.echo(statement)
    finally:
        engine.dispose()


@app.command()
def demo(device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu") -> None:
    """The whole job on a generated sample catalogue: init, sync, index, "more like this", a contact sheet."""
    from .demo import demo as run_demo

    result = run_demo(settings(), say=typer.echo, device=device)
    for example in result.examples:
        filters = ", ".join(f"{key} = {value}" for key, value in example.filters.items())
        typer.echo(f"\n{example.title}: #{example.query_id}" + (f" ({filters})" if filters else ""))
        for row in example.rows:
            facets = row.get("facets") or {}
            typer.echo(f"  #{row['artwork_id']:<4} {row['distance']:.4f}  {facets.get('artist', ''):<20} "
                       f"{facets.get('era', '')}")
    typer.echo(f"\ncontact sheet: {result.sheet}")
    typer.echo('next: psql "$(artvec db url)" — the SQL the website sends is in README.md and docs/sql.md')


def main() -> None:
    try:
        app()
    except ArtvecError as error:
        if STATE["debug"]:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
