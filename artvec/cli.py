"""The ``artvec`` admin tool: each command is a few lines over a library function of the same name.

Heavy imports (torch, SQLAlchemy, the embedded server) happen inside the commands,
so ``artvec --help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import ArtvecError

app = typer.Typer(help="Style and colour similarity for picture libraries, in PostgreSQL + pgvector.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="The database artvec uses.", no_args_is_help=True)
settings_app = typer.Typer(help="artvec's settings (defaults, artvec.toml, ARTVEC_*, options).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(settings_app, name="config")

STATE: dict = {"debug": False}
#: the exit code of a command stopped by Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"artvec {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    settings_file: Annotated[Optional[Path], typer.Option("--config", help="artvec.toml to read (default: ./artvec.toml if present).")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="PostgreSQL URL (default: ARTVEC_DATABASE_URL, the config file, else the embedded server).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")] = False,
) -> None:
    STATE["debug"] = debug
    STATE["settings_file"] = settings_file
    STATE["overrides"] = {"database.url": database_url}


def load_settings(**overrides):
    from .config import Settings

    return Settings.load(STATE.get("settings_file"), {**STATE.get("overrides", {}), **overrides})


def echo_json(value) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@contextmanager
def store_engine(settings, schema: bool = True):
    """The command's one engine, made here and passed down; disposed at the end. ``schema``:
    artvec's schema must be there already (every command but init, db status, demo)."""
    from . import db, store

    engine = store.engine_for_schema(settings) if schema else db.engine_for(settings)
    try:
        yield engine
    finally:
        engine.dispose()


@app.command()
def init() -> None:
    """Create or upgrade artvec's schema (safe to run again)."""
    from . import store

    settings = load_settings()
    with store_engine(settings, schema=False) as engine:
        result = store.init(settings, engine=engine)
    typer.echo(f"artvec schema at revision {result['revision']} in {result['url']}; "
               f"active configuration {result['active'] or '-'}")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (psql accepts it)."""
    from . import db

    typer.echo(db.url(load_settings()))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server (any later command starts it again)."""
    from . import db

    data_dir, was_running = db.stop(load_settings())
    typer.echo(f"stopped the embedded server in {data_dir}" if was_running
               else f"the embedded server in {data_dir} is not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Where the database is and what artvec keeps in it."""
    from . import store

    settings = load_settings()
    with store_engine(settings, schema=False) as engine:
        info = store.db_status(settings, engine=engine)
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:>18}: {value}")


@settings_app.command("show")
def settings_show(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Print the effective settings and where each value came from (passwords hidden)."""
    from .config import show

    rows = show(load_settings())
    if as_json:
        echo_json({key: {"value": value, "source": source} for key, value, source in rows})
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        typer.echo(f"{key:<{width}}  {json.dumps(value, default=str):<40}  {source}")


DECODE_WORKERS_HELP = "Pictures decoded at once (default: 2 on a CPU; on a GPU one a core but one, at most 16)."


@app.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(help="Picture files or folders (searched recursively).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Write an N×D float32 .npy (input order) and the names beside it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of text.")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Pictures decoded ahead and grouped by shape (on a CPU the model takes at most 8 at once).")] = 32,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="Torch CPU threads.")] = None,
    by: Annotated[str, typer.Option("--by", help="both (the combined vector) | style | colour | copy (the copy vector)")] = "both",
    decode_workers: Annotated[Optional[int], typer.Option("--decode-workers", min=1, help=DECODE_WORKERS_HELP)] = None,
) -> None:
    """Embed pictures with the configured model and print or save their vectors."""
    from .embedding import embed as embed_pictures

    result = embed_pictures(paths, out=out, device=device, batch_size=batch_size, threads=threads,
                            config=load_settings().embedding_config(), by=by, decode_workers=decode_workers)
    for line in embed_lines(result, as_json):
        typer.echo(line)


def embed_lines(result, as_json: bool) -> list[str]:
    """What `artvec embed` prints: vectors (text or JSON lines), or what --out wrote; bad pictures."""
    config = result.config
    lines: list[str] = []
    if result.out is not None:
        if as_json:
            lines.append(json.dumps({**result.meta(), "out": str(result.out), "names_file": str(result.names_file)}))
        else:
            lines.extend(f"{i}\t{name}" for i, name in enumerate(result.names))
            lines.append(f"wrote {len(result.names)}×{result.vectors.shape[1]} float32 to {result.out}, names in order to "
                         f"{result.names_file} ({config.config_id})")
    elif as_json:
        for name, row in zip(result.names, result.vectors):
            lines.append(json.dumps({"name": name, "config_id": config.config_id,
                                     "vector": [round(float(v), 7) for v in row]}))
        for error in result.errors:
            lines.append(json.dumps({"name": error.name, "error": type(error).__name__, "reason": error.reason}))
    else:
        for name, row in zip(result.names, result.vectors):
            lines.append(name + "\t" + ",".join(f"{float(v):.7g}" for v in row))
    if not as_json:
        lines.extend(f"error: {error}" for error in result.errors)
    return lines


@app.command()
def sync(
    table: Annotated[Optional[str], typer.Option("--table", help="Catalogue table or view (overrides catalogue.table).")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder that relative image paths are under.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=0, help="Embed at most N pictures this run.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done; write nothing.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-read and hash every picture; re-embed those whose bytes changed.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Try pictures that failed before again.")] = False,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Pictures per committed batch (on a CPU the model takes at most 8 at once).")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu or cuda.")] = None,
    decode_workers: Annotated[Optional[int], typer.Option("--decode-workers", min=1, help=DECODE_WORKERS_HELP)] = None,
    no_activate: Annotated[bool, typer.Option("--no-activate", help="A new embedding configuration, once complete, stays pending (artvec activate).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Keep embeddings in step with the catalogue: new, changed, deleted pictures, model changes.

    With an embedding configuration other than the active one, it keeps the active one current
    and fills the new one; complete and indexed, the new one becomes active.

    Exit codes: 0 all synced; 4 finished, but some pictures failed (see `artvec failures`);
    1-3 could not run (configuration, database)."""
    from .progress import Progress
    from .sync import SyncOptions, sync as run_sync

    settings = load_settings(**{"catalogue.table": table, "catalogue.image_root": str(image_root) if image_root else None,
                                "sync.batch_size": batch_size, "sync.device": device,
                                "sync.decode_workers": decode_workers})
    options = SyncOptions(limit=limit, dry_run=dry_run, full=full, retry_failed=retry_failed,
                          batch_size=settings.get("sync.batch_size"), device=settings.get("sync.device"),
                          decode_workers=settings.get("sync.decode_workers"),
                          activate=not no_activate, progress=None if as_json else Progress("sync"),
                          say=None if as_json else (lambda line: typer.echo(line, err=True)))
    with store_engine(settings) as engine:
        report = run_sync(settings, options, engine=engine)
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
                 f"{report.seconds:.1f} s, {report.rate:.2f} pictures/s" + (
                     f" ({report.device}, {report.decode_workers} decode workers)" if report.device else ""))
    if report.switch:
        lines.append(switch_text(report))
    return "\n".join(lines)


def switch_text(report) -> str:
    switch = report.switch
    if switch["activated"] or report.active_config_id == switch["config_id"]:
        return f"switched: {switch['config_id']} is active now (artvec configs; artvec prune drops the old one)"
    if switch["missing"] == 0:
        return (f"switch: {switch['config_id']} is complete but pending (--no-activate); "
                f"artvec activate {switch['config_id']} makes it active")
    return (f"switching to {switch['config_id']}: {switch['embedded']} embedded this run, "
            f"{switch['missing'] if switch['missing'] is not None else '?'} to go; "
            f"the site still sees {report.active_config_id}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts by state and configuration, the last sync, the most common failure reasons."""
    from .sync import status as sync_status

    settings = load_settings()
    with store_engine(settings) as engine:
        info = sync_status(settings, engine=engine)
    if as_json:
        echo_json(info)
        return
    typer.echo(f"active configuration: {info['active_config']}")
    if info["configured"] != info["active_config"]:
        typer.echo(f"configured (switching to it): {info['configured']}")
    for row in info["by_config"]:
        typer.echo(f"  embedded  {row['count']:>8}  {row['config_id']}{'  (active)' if row['active'] else ''}")
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

    settings = load_settings()
    with store_engine(settings) as engine:
        rows = list_failures(settings, limit, engine=engine)
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
    from . import indexes
    from .reconnect import Retry

    settings = load_settings()
    with store_engine(settings) as engine:
        Retry.from_settings(settings).call(lambda: indexes.index(
            settings, rebuild=rebuild, progress=typer.echo, maintenance_work_mem=maintenance_work_mem,
            engine=engine))


def with_stored_facets(settings, engine):
    """The settings; without configured facets, those the sync stored (e.g. after `artvec demo`)."""
    from . import store

    if not settings.get("catalogue.facets"):
        with engine.connect() as connection:
            settings.set("catalogue.facets", store.facet_names(connection), "stored embeddings")
    return settings


def settings_with_stored_facets():
    """Settings with the stored facets, for `artvec serve` (the web app keeps an engine of its own
    for as long as it runs)."""
    settings = load_settings()
    with store_engine(settings) as engine:
        return with_stored_facets(settings, engine)


@app.command("similar")
def similar_command(
    artwork_id: Annotated[Optional[str], typer.Argument(help="Catalogue id of the query picture.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Search with this picture file instead.")] = None,
    by: Annotated[str, typer.Option("--by", help="both | style | colour | copy (the copy vector: copies of a picture)")] = "both",
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="Only pictures with facet=value (repeatable).")] = None,
    excludes: Annotated[Optional[list[str]], typer.Option("--exclude", help="Leave out pictures with facet=value (repeatable).")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="How many neighbours.")] = 12,
    through: Annotated[str, typer.Option("--through", help="Filter via 'facets' (default) or a join with the 'catalogue' table.")] = "facets",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a contact sheet PNG of the query and its neighbours.")] = None,
    colours: Annotated[Optional[str], typer.Option("--colours", help="Search by palette instead: '#8b4513:60,#f5deb3:40' (hex colours with weights).")] = None,
    expand: Annotated[Optional[int], typer.Option("--expand", help="Average the query with its N nearest pictures first (default: search.expand, 2; 0: the plain distance; never for --by copy or a palette).")] = None,
) -> None:
    """The pictures nearest to an artwork (or to a picture file, or a palette), with distances and facets."""
    from . import search

    settings = load_settings()
    with store_engine(settings) as engine:
        settings = with_stored_facets(settings, engine)
        if colours is not None:
            from .palette import find_by_palette

            if artwork_id is not None or image is not None:
                raise search.SearchError("--colours searches by palette: give no artwork ID or --image with it")
            found = find_by_palette(settings, colours, search.parse_filters(filters or []),
                                    search.parse_filters(excludes or []), k, through, engine=engine)
        else:
            found = search.find_similar(engine, settings, artwork_id, str(image) if image else None, by,
                                        search.parse_filters(filters or []), search.parse_filters(excludes or []),
                                        k, through, expand)
    if sheet:
        write_similar_sheet(settings, found, sheet)
    if as_json:
        echo_json(found["rows"])
        return
    facets = list(settings.get("catalogue.facets") or [])
    typer.echo("  ".join([f"{'id':>12}", f"{'distance':>9}", *[f"{name:<16}" for name in facets]]).rstrip())
    for row in found["rows"]:
        values = [str((row["facets"] or {}).get(name, "")) for name in facets]
        typer.echo("  ".join([f"{row['artwork_id']!s:>12}", f"{row['distance']:9.4f}",
                              *[f"{value:<16}" for value in values]]).rstrip())


def write_similar_sheet(settings, found: dict, out: Path) -> None:
    from .sheet import resolve_location, write_sheet

    root = settings.get("catalogue.image_root")
    neighbours = [(f"{row['artwork_id']}\nd = {row['distance']:.4f}", resolve_location(row["image_location"], root))
                  for row in found["rows"]]
    query = (f"query {found['query']}"[:30], resolve_location(found["query_location"], root))
    write_sheet(query, neighbours, out)
    typer.echo(f"contact sheet: {out}", err=True)


def echo_expanded(expanded: dict, k: int) -> None:
    """The figures of the search "more like this" makes, each with its difference to the plain one."""
    figures = expanded["overall"]

    def figure(name: str, key: str) -> str:
        change = expanded["difference"][key]
        noise = "" if change["interval"] is None else f" ± {change['interval']:.3f}{' *' if change['beyond_noise'] else ''}"
        return f"{name} {figures[key]:.3f} ({change['difference']:+.3f}{noise})"

    typer.echo(f"  more like this (the query averaged with its {expanded['expand']} nearest first): "
               + "   ".join(figure(name, key) for name, key in ((f"precision@{k}", f"p@{k}"), ("mAP@R", "map@r"),
                                                                  ("nearest-neighbour accuracy", "nn"))))


@app.command("evaluate")
def evaluate_command(
    label: Annotated[str, typer.Option("--label", help="The facet that says which pictures belong together (artist, say).")],
    by: Annotated[str, typer.Option("--by", help="both | style | colour | copy")] = "both",
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Precision at this many neighbours.")] = 10,
    sample: Annotated[int, typer.Option("--sample", min=0, help="Queries drawn from the store (0 = every picture).")] = 2000,
    duplicates: Annotated[int, typer.Option("--duplicates", min=0, help="Pictures whose edited copies calibrate the near-duplicate distance (0 = skip).")] = 8,
    config_id: Annotated[Optional[str], typer.Option("--config-id", help="Embedding configuration to judge (default: the active one; another one is read from its own table).")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder that relative image paths are under (for the near-duplicate copies).")] = None,
    worst: Annotated[int, typer.Option("--worst", min=0, help="Labels listed in the text output, worst first.")] = 15,
    against: Annotated[Optional[str], typer.Option("--against", help="Another stored configuration, judged on the same pictures by the same queries: each figure's difference and whether it is beyond the noise (95 % interval, labels resampled).")] = None,
    expand: Annotated[Optional[int], typer.Option("--expand", help="Also search each query as more like this does, averaged with its N nearest pictures first (default: search.expand, 2; 0: skip).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (every label).")] = False,
) -> None:
    """Quality on your own library: do a picture's nearest neighbours share its label?"""
    from .evaluate import evaluate
    from .progress import Progress

    config = load_settings(**{"catalogue.image_root": str(image_root) if image_root else None})
    report = evaluate(config, label, by=by, k=k, sample=sample, duplicates=duplicates, config_id=config_id,
                      against=against, progress=lambda message: typer.echo(message, err=True), advance=Progress("queries"),
                      expand=expand)
    if as_json:
        echo_json(report)
        return
    overall = report["overall"]
    typer.echo(f"{report['config_id']}, by {report['by']}: {report['pictures']} pictures, {report['labels']} "
               f"values of {report['label']!r}, {report['queries']} queries")
    typer.echo(f"  precision@{k} {overall[f'p@{k}']:.3f}   mAP@R {overall['map@r']:.3f}   "
               f"nearest-neighbour accuracy {overall['nn']:.3f}   (chance precision {report['chance_p@k']:.3f})")
    if "expanded" in report:
        echo_expanded(report["expanded"], k)
    typer.echo(f"\n{'label':<28} {'pictures':>8} {f'P@{k}':>6} {'mAP@R':>6} {'NN':>6}   (worst first)")
    for row in report["per_label"][:worst]:
        typer.echo(f"{row['label'][:28]:<28} {row['pictures']:>8} {row[f'p@{k}']:>6.3f} {row['map@r']:>6.3f} {row['nn']:>6.3f}")
    if len(report["per_label"]) > worst:
        typer.echo(f"… {len(report['per_label']) - worst} more labels (--worst N, or --json)")
    distances = report["distances"]
    typer.echo("\ndistances           " + "  ".join(f"{q:>6}" for q in distances["same_label"]))
    for name, key in (("same label", "same_label"), ("other label", "other_label"),
                      ("nearest other", "nearest_other_picture")):
        typer.echo(f"{name:<19} " + "  ".join(f"{v:6.3f}" for v in distances[key].values()))
    dup = report["near_duplicates"]
    if "skipped" in dup:
        typer.echo(f"near-duplicates: not measured ({dup['skipped']})")
    else:
        typer.echo("near-duplicates     " + "  ".join(f"{v:6.3f}" for v in dup["distances"].values())
                   + f"   ({dup['copies']} edited copies of {dup['pictures']} pictures; top-1 {dup['top1']:.3f})")
        typer.echo(f"suggested near-duplicate threshold: {dup['threshold']:.3f} (catches {dup['copies_caught']:.0%} of "
                   f"the edited copies; {dup['distinct_pictures_flagged']:.0%} of pictures have another picture that close)")
    if "against" in report:
        echo_comparison(report["config_id"], report["against"])
    grouping = report["clustering"]
    if "skipped" in grouping:
        typer.echo(f"stored clustering: not measured ({grouping['skipped']})")
    else:
        typer.echo(f"stored clustering (run {grouping['run_id']}, {grouping['groups']} groups) against {report['label']!r}: "
                   f"NMI {grouping['nmi']:.3f}, ARI {grouping['ari']:.3f}")


def echo_comparison(this: str, against: dict) -> None:
    """The text of ``evaluate --against``: both figures, their difference and whether it exceeds the noise."""
    from .evaluate import MIN_LABELS_TO_JUDGE

    typer.echo(f"\n{this} − {against['config_id']}, on the {against['pictures']} pictures both hold "
               f"({against['queries']} queries, {against['labels']} labels; 95 % interval, labels resampled):")
    names = {"map@r": "mAP@R", "nn": "nearest neighbour"}
    for key, f in against["figures"].items():
        interval = "n/a" if f["interval"] is None else f"{f['interval']:.3f}"
        verdict = (f"{this if f['difference'] > 0 else against['config_id']} ahead, beyond the noise" if f["beyond_noise"]
                   else "within the noise" if against["labels"] >= MIN_LABELS_TO_JUDGE
                   else f"too few labels to tell ({MIN_LABELS_TO_JUDGE} or more needed)")
        typer.echo(f"  {names.get(key, key.replace('p@', 'precision@')):<18} {f['this']:.3f} − {f['that']:.3f} = "
                   f"{f['difference']:+.3f} ± {interval}   {verdict}")


@app.command("grant-read")
def grant_read_command(
    role: Annotated[str, typer.Argument(help="Database role of the website.")],
    decisions: Annotated[bool, typer.Option("--decisions", help="Also let it record duplicate decisions (INSERT on artvec.duplicate_decisions only).")] = False,
) -> None:
    """Give a database role read-only access to artvec's schema (now and for future tables)."""
    from . import grants

    with store_engine(load_settings()) as engine:
        statements = grants.grant_read(engine, role)
        if decisions:
            from .duplicates import grant_decisions

            statements += grant_decisions(engine, role)
        for statement in statements:
            typer.echo(statement)


@app.command()
def configs(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """The embedding configurations in the store: dims, pictures embedded, indexes, which is active."""
    from . import configurations

    with store_engine(load_settings()) as engine:
        rows = configurations.configs(engine)
    if as_json:
        echo_json(rows)
        return
    typer.echo(f"{'':2}{'config_id':<32} {'dims':>20} {'embedded':>17}  {'indexes':<8} {'created':<16}  last used")
    for row in rows:
        dims = "{embedding}/{style}/{colour}".format(**row["dims"]) + (f"+{row['dims']['copy']}" if "copy" in row["dims"] else "")
        size = row["catalogue_size"] if row["catalogue_size"] is not None else "?"
        typer.echo(f"{'*' if row['active'] else ' '} {row['config_id']:<32} {dims:>20} "
                   f"{str(row['embedded']) + ' / ' + str(size):>17}  {'ready' if row['indexes_ready'] else '-':<8} "
                   f"{row['created_at']:%Y-%m-%d %H:%M}  {row['last_used_at']:%Y-%m-%d %H:%M}")
    typer.echo("* active: what artvec.embeddings shows")


@app.command()
def activate(
    config_id: Annotated[str, typer.Argument(help="The configuration to make active (see artvec configs).")],
    force: Annotated[bool, typer.Option("--force", help="Even if it lacks pictures or its HNSW indexes.")] = False,
) -> None:
    """Make an embedding configuration the one artvec.embeddings shows, in one transaction."""
    from . import configurations

    with store_engine(load_settings()) as engine:
        result = configurations.activate(engine, config_id, force=force)
    typer.echo(f"{config_id} is active" + ("" if result["changed"] else " already")
               + (f" (was {result['previous']})" if result["changed"] and result["previous"] else ""))


@app.command()
def prune(keep: Annotated[int, typer.Option("--keep", min=0, help="Keep the N most recently used inactive configurations.")] = 0) -> None:
    """Drop the vectors of inactive embedding configurations (never the active or the configured one)."""
    from . import configurations

    settings = load_settings()
    with store_engine(settings) as engine:
        dropped = configurations.prune(engine, keep=keep, spare=settings.embedding_config().config_id)
    for config_id in dropped:
        typer.echo(f"dropped {config_id}")
    if not dropped:
        typer.echo("nothing to prune")


# ---- style groups and the map (artvec/clusters.py, artvec/maps.py) ----------------------------

@app.command("clusters")
def clusters_command(
    by: Annotated[str, typer.Option("--by", help="both | style | colour")] = "both",
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="Only pictures with facet=value (repeatable).")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Number of groups (default: chosen by silhouette).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Cluster anew instead of updating the stored groups.")] = False,
    typical: Annotated[int, typer.Option("--typical", help="Typical pictures shown per group.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a contact sheet PNG per group into this folder.")] = None,
) -> None:
    """Group the pictures by visual similarity; new pictures join their nearest group."""
    from . import clusters, search

    config = load_settings()
    with store_engine(config) as engine:
        config = with_stored_facets(config, engine)
        found = clusters.clusters(config, by, search.parse_filters(filters or []), k, refresh, typical,
                                  engine=engine, say=lambda message: typer.echo(message, err=True))
    if sheet:
        written = clusters.write_group_sheets(config, found["groups"], sheet)
        typer.echo(f"contact sheets: {len(written)} in {sheet}", err=True)
    echo_json(found) if as_json else typer.echo(clusters_text(found))


def clusters_text(found: dict) -> str:
    run = found["run"]
    chosen = "given" if run["parameters"].get("k_chosen_by") == "given" else "chosen by silhouette"
    lines = [f"{len(found['groups'])} groups of {run['pictures']} pictures (run {run['run_id']}, by {run['by']}, "
             f"k = {run['k']} {chosen}, {run['created_at']:%Y-%m-%d %H:%M}); "
             f"{found['assigned']} new pictures assigned, {found['removed']} removed since"]
    for entry in found["groups"]:
        facets = "; ".join(f"{name}: " + ", ".join(f"{value} {count}" for value, count in values)
                           for name, values in entry["facets"].items())
        typical = " ".join(f"#{row['artwork_id']}" for row in entry["typical"])
        lines.append(f"group {entry['cluster']:>3}  {entry['size']:>7} pictures  typical: {typical}"
                     + (f"  ({facets})" if facets else ""))
    return "\n".join(lines)


@app.command("map")
def map_command(
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("map.png"),
    by: Annotated[str, typer.Option("--by", help="both | style | colour")] = "both",
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="Only pictures with facet=value (repeatable).")] = None,
) -> None:
    """Lay the collection out in 2D (alike pictures together), coloured by group; coordinates are stored."""
    from . import maps, search

    config = load_settings()
    with store_engine(config) as engine:
        config = with_stored_facets(config, engine)
        result = maps.build_map(config, out, by, search.parse_filters(filters or []),
                                say=lambda message: typer.echo(message, err=True), engine=engine)
    typer.echo(f"map of {result['pictures']} pictures ({result['thumbnails']} thumbnails, {result['groups']} groups, "
               f"layout {result['layout']}): {out}")
# ---- duplicates, decisions, the web page (issue 12) -----------------------------------------

@app.command("duplicates")
def duplicates_command(
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Largest distance of a near-duplicate pair (default: calibrated, see README; on the copy vector where the configuration has one).")] = None,
    filters: Annotated[Optional[list[str]], typer.Option("--filter", help="Only pictures with facet=value (repeatable).")] = None,
    excludes: Annotated[Optional[list[str]], typer.Option("--exclude", help="Leave out pictures with facet=value (repeatable).")] = None,
    neighbours: Annotated[int, typer.Option("--neighbours", help="Nearest neighbours asked of the index per picture.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="One CSV row per candidate pair.")] = False,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write one contact sheet per group into this folder.")] = None,
) -> None:
    """Groups of near-duplicate (rescans, crops, re-encodes) and exact-duplicate pictures, undecided ones only."""
    from . import duplicates, search

    config = load_settings()
    with store_engine(config) as engine:
        config = with_stored_facets(config, engine)
        report = duplicates.find_duplicates(config, threshold, search.parse_filters(filters or []),
                                            search.parse_filters(excludes or []), neighbours, engine=engine)
    if sheet:
        written = duplicates.write_sheets(config, report, sheet)
        typer.echo(f"{len(written)} contact sheets in {sheet}", err=True)
    if as_json:
        echo_json(report.as_dict())
    elif as_csv:
        typer.echo(duplicates.as_csv(report), nl=False)
    else:
        typer.echo(duplicates.as_text(report))


@app.command("decide")
def decide_command(
    first: Annotated[str, typer.Argument(help="Artwork id of one picture.")],
    second: Annotated[str, typer.Argument(help="Artwork id of the other.")],
    decision: Annotated[str, typer.Argument(help="same | different | variant")],
    who: Annotated[Optional[str], typer.Option("--who", help="Who decided (default: the database user).")] = None,
) -> None:
    """Record a duplicate decision; `artvec duplicates` never proposes the pair again (unless its bytes change)."""
    from . import duplicates

    with store_engine(load_settings()) as engine:
        row = duplicates.decide(engine, first, second, decision, who)
    typer.echo(f"{row['artwork_a']} ~ {row['artwork_b']}: {row['decision']} "
               f"(by {row['decided_by']}, {row['decided_at']:%Y-%m-%d %H:%M})")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Thumbnail cache folder (default: <home>/thumbnails).")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder that relative image paths are under (overrides catalogue.image_root).")] = None,
) -> None:
    """The curators' page: "more like this", palette search, duplicate review; JSON API at /docs."""
    from .web.app import serve

    if image_root:
        STATE.setdefault("overrides", {})["catalogue.image_root"] = str(image_root)
    serve(settings_with_stored_facets(), host, port, cache, say=typer.echo)


@app.command()
def demo(device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu") -> None:
    """The whole job on a generated sample catalogue: init, sync, index, "more like this", a contact sheet, style groups, a map."""
    from .demo import demo as run_demo

    settings = load_settings()
    with store_engine(settings, schema=False) as engine:
        result = run_demo(settings, engine, say=typer.echo, device=device)
    for example in result.examples:
        filters = ", ".join(f"{key} = {value}" for key, value in example.filters.items())
        typer.echo(f"\n{example.title}: #{example.query_id}" + (f" ({filters})" if filters else ""))
        for row in example.rows:
            facets = row.get("facets") or {}
            typer.echo(f"  #{row['artwork_id']:<4} {row['distance']:.4f}  {facets.get('artist', ''):<20} "
                       f"{facets.get('era', '')}")
    typer.echo(f"\ncontact sheet: {result.sheet}")
    typer.echo(f"\nStyle groups (k = 5, one per manner; `artvec clusters` alone picks k by silhouette): "
               f"{clusters_text(result.groups)}\nmap: {result.map}")
    typer.echo(f"demo catalogue settings: {result.images.parent / 'artvec.toml'} (artvec commands run from "
               "that folder use the demo catalogue)")
    typer.echo('next: psql "$(artvec db url)" — the SQL the website sends is in README.md and docs/sql.md')
    typer.echo(f"judge it: artvec evaluate --label artist --image-root {result.images}")
    typer.echo(f"browse it: artvec serve --image-root {result.images}, then open http://127.0.0.1:8000 "
               "(more like this, palettes, duplicate review)")


def main() -> None:
    try:
        app()
    except ArtvecError as error:
        if STATE["debug"]:
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except SystemExit as leaving:
        if leaving.code == INTERRUPTED:  # Typer turns Ctrl-C into this exit code, silently
            typer.echo("interrupted", err=True)
        raise


if __name__ == "__main__":
    main()
