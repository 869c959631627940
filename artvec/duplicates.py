"""Near- and exact-duplicate pictures, found through the HNSW index, and the curators' decisions.

Each picture asks the index for its few nearest neighbours (a lateral k-NN join, one HNSW scan
per picture, split over several connections); neighbours nearer than the threshold become
candidate pairs, pictures with the same SHA-256 are pairs too, and pairs are grouped by
union-find. A pair somebody decided (same picture / different pictures / variant) is never
proposed again while both pictures keep the bytes they had when it was decided.
"""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from sqlalchemy import (Column, Float, LargeBinary, MetaData, String, Table, and_, bindparam, cast, func,
                        literal_column, select, text, true)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from .errors import ArtvecError, first_line

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .config import Settings

#: Copy-vector distance under which two pictures are proposed as duplicates, where the active configuration has
#: a copy vector (the default has: artvec.embedding's ``copy_vector``; unit vectors). Measured by
#: ``python benchmarks/duplicate_threshold.py``: distances from each of 10 scikit-image photographs and 40 demo
#: pictures to its edits (artvec/edits.py: rescans, mats, crops, rescales, re-encodes, greyscale copies, casts;
#: plus a soft rescan): 450 pairs; and between 130 different pictures (originals, distractors, and 7
#: stylisations of each photograph: the same content in another manner, the hardest case for a copy
#: vector): 8,385 pairs. At 0.78 (the cut that lets in 2.5 % of different pairs): recall of the edits 0.82
#: (photographs 0.97); the combined vector at its own 2.5 % cut: 0.84 (−0.022 ± 0.032, within the noise); at 1 %:
#: 0.60 against 0.49 (+0.118 ± 0.044). Re-run the script after a change of embedding.
COPY_THRESHOLD = 0.78
#: The same for the combined vector (configurations without a copy vector), measured on the same pairs.
#: Combined vectors differ between configurations: today's default's 2.5 % cut is 0.920 (0.925 for
#: vgg19-style-b72a9dc7ebe1; the earlier defaults' 0.883 for vgg19-style-452b0579749d, 0.947 for
#: vgg19-style-817b32d85a47); at 0.928 it lets in 2.55 % of different pairs and catches 0.86 of the edits
#: (photographs 0.94); ``calibrate_threshold``'s 1 % cut (0.699) would catch only 0.49, missing most rescans and
#: greyscale copies, so the queue takes the extra candidates (one click clears each for good).
DEFAULT_THRESHOLD = 0.928
MAX_FALSE_SHARE = 0.01      # share of different-picture pairs the calibrated cut may let in
NEIGHBOURS = 8              # neighbours asked of the index per picture
SCAN_EF_SEARCH = 40         # near-duplicates are a picture's very nearest: a short HNSW walk finds them
DECISIONS = ("same", "different", "variant")


class DuplicatesError(ArtvecError):
    """A duplicate search or decision that cannot run as asked."""


metadata = MetaData(schema="artvec")
embeddings = Table(
    "embeddings", metadata,
    Column("artwork_id"), Column("config_id", String), Column("embedding"), Column("copy"),
    Column("image_sha256", LargeBinary), Column("image_location", String), Column("facets", JSONB),
)


# ---- the threshold ------------------------------------------------------------------------

def calibrate_threshold(same: Sequence[float], different: Sequence[float],
                        max_false_share: float = MAX_FALSE_SHARE) -> float:
    """The distance cut for near-duplicates, from measured distances of near-duplicate pairs
    (``same``) and of pairs of different pictures (``different``).

    In a library almost every pair is a pair of different pictures, so the cut is bounded by
    them: at most ``max_false_share`` of the different pairs may fall within it (the cut sits
    halfway between the last one allowed in and the next). If every near-duplicate is closer
    than that, the cut stops halfway between the farthest near-duplicate and the next
    different pair above it."""
    if not same or not different:
        raise DuplicatesError("calibration needs distances of both near-duplicates and different pictures")
    different = sorted(different)
    allowed = int(max_false_share * len(different))
    following = different[allowed] if allowed < len(different) else different[-1] * 1.01
    cut = (different[allowed - 1] + following) / 2 if allowed else following / 2
    farthest = max(same)
    above = [d for d in different if d > farthest]
    return min(cut, (farthest + above[0]) / 2) if above else cut


# ---- groups -------------------------------------------------------------------------------

@dataclass
class Pair:
    a: Any
    b: Any
    distance: float
    exact: bool = False

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "distance": round(self.distance, 6), "exact": self.exact}


@dataclass
class Group:
    number: int
    members: list[dict]
    pairs: list[Pair] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return len({member["sha256"] for member in self.members}) == 1

    def as_dict(self) -> dict:
        return {"group": self.number, "exact": self.exact, "members": self.members,
                "pairs": [pair.as_dict() for pair in self.pairs]}


@dataclass
class DuplicatesReport:
    threshold: float
    groups: list[Group]
    pictures: int
    seconds: float
    suppressed: int          # candidate pairs left out because they were decided
    column: str = "embedding"  # the vector compared: the copy vector where the configuration has one

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "compared": self.column, "pictures": self.pictures, "seconds": round(self.seconds, 2),
                "decided_pairs_left_out": self.suppressed, "groups": [group.as_dict() for group in self.groups]}


def pair_key(a: Any, b: Any) -> tuple:
    return (a, b) if str(a) <= str(b) else (b, a)


def union_find_groups(pairs: Iterable[Pair]) -> list[list[Pair]]:
    """Pairs grouped by connected component (union-find with path halving)."""
    parent: dict[Any, Any] = {}

    def root(item):
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    pairs = list(pairs)
    for pair in pairs:
        parent[root(pair.a)] = root(pair.b)
    components: dict[Any, list[Pair]] = {}
    for pair in pairs:
        components.setdefault(root(pair.a), []).append(pair)
    return list(components.values())


# ---- finding them -------------------------------------------------------------------------

def distance_between(left, right, dims: int):
    from .search import indexed_form

    return indexed_form(left, dims).op("<->", return_type=Float())(indexed_form(right, dims))


def neighbour_statement(threshold: float, neighbours: int, where_e: list, where_x: list, dims: int,
                        part: int, parts: int, column: str = "embedding"):
    """Each picture's ``neighbours`` nearest by ``column`` (HNSW, one scan per picture) within ``threshold``."""
    e, x = embeddings.alias("e"), embeddings.alias("x")
    distance = distance_between(x.c[column], e.c[column], dims)
    nearest = (select(x.c.artwork_id.label("neighbour"), distance.label("distance"))
               .where(x.c.config_id == e.c.config_id, x.c.artwork_id != e.c.artwork_id,
                      *[clause(x) for clause in where_x])
               .order_by(distance).limit(neighbours).lateral("n"))
    share = (func.hashtext(cast(e.c.artwork_id, String)).op("&")(literal_column("2147483647"))
             .op("%")(bindparam("parts", parts)) == bindparam("part", part))
    return (select(e.c.artwork_id, nearest.c.neighbour, nearest.c.distance)
            .select_from(e.join(nearest, true()))
            .where(nearest.c.distance <= bindparam("threshold", threshold), share,
                   *[clause(e) for clause in where_e]))


def exact_statement(where_e: list):
    e = embeddings.alias("e")
    return (select(func.array_agg(e.c.artwork_id)).where(*[clause(e) for clause in where_e])
            .group_by(e.c.config_id, e.c.image_sha256).having(func.count() > 1))


def scan_part(engine: "Engine", statement, ef_search: int) -> list:
    with engine.connect() as connection:
        connection.execute(text("select set_config('hnsw.ef_search', :v, true)"), {"v": str(ef_search)})
        rows = connection.execute(statement).all()
        connection.rollback()
    return rows


def candidate_pairs(engine: "Engine", threshold: float, filter_clause, neighbours: int, workers: int,
                    dims: int, column: str = "embedding") -> dict[tuple, Pair]:
    statements = [neighbour_statement(threshold, neighbours, [filter_clause], [filter_clause], dims, part, workers,
                                      column) for part in range(workers)]
    ef_search = max(SCAN_EF_SEARCH, 2 * neighbours)
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda statement: scan_part(engine, statement, ef_search), statements))
    pairs: dict[tuple, Pair] = {}
    for rows in parts:
        for a, b, distance in rows:
            key = pair_key(a, b)
            if key not in pairs or distance < pairs[key].distance:
                pairs[key] = Pair(*key, float(distance))
    with engine.connect() as connection:
        for (members,) in connection.execute(exact_statement([filter_clause])):
            members = sorted(members, key=str)
            for other in members[1:]:
                pairs[pair_key(members[0], other)] = Pair(*pair_key(members[0], other), 0.0, True)
    return pairs


def decided_pairs(connection: "Connection") -> set[tuple]:
    """Pairs with a decision made on the bytes both pictures still have."""
    rows = connection.execute(text("""
        select d.artwork_a, d.artwork_b
        from artvec.duplicate_decisions d
        join artvec.embeddings a on a.artwork_id = d.artwork_a and a.image_sha256 = d.sha256_a
        join artvec.embeddings b on b.artwork_id = d.artwork_b and b.image_sha256 = d.sha256_b"""))
    return {pair_key(a, b) for a, b in rows}


def member_details(connection: "Connection", ids: list) -> dict[Any, dict]:
    e = embeddings
    rows = connection.execute(select(e.c.artwork_id, e.c.image_location, e.c.facets,
                                     func.encode(e.c.image_sha256, "hex"))
                              .where(e.c.artwork_id.in_(bindparam("ids", ids, expanding=True)))) if ids else []
    return {row[0]: {"artwork_id": row[0], "image_location": row[1], "facets": row[2] or {}, "sha256": row[3]}
            for row in rows}


def compared_column(dims: Mapping[str, int]) -> tuple[str, int]:
    """The column pairs are found by, and its size: the copy vector where the active configuration has one
    (made to tell a copy from a sibling), else the combined vector."""
    return ("copy", dims["copy"]) if dims.get("copy") else ("embedding", dims["embedding"])


def check_threshold(threshold: float | None, column: str = "embedding") -> float:
    if threshold is None:
        return COPY_THRESHOLD if column == "copy" else DEFAULT_THRESHOLD
    threshold = float(threshold)
    if not 0 < threshold <= 2:
        raise DuplicatesError(f"--threshold must be more than 0 and at most 2 (unit vectors), not {threshold}")
    return threshold


def find_duplicates(settings: "Settings", threshold: float | None = None,
                    filters: Mapping[str, Any] | None = None, excludes: Mapping[str, Any] | None = None,
                    neighbours: int = NEIGHBOURS, workers: int = 2,
                    engine: "Engine | None" = None) -> DuplicatesReport:
    """Groups of near- and exact-duplicate pictures, biggest doubt last (nearest pairs first)."""
    from . import store
    from .search import filter_clauses, settings_or_default

    check_threshold(threshold)
    if not 1 <= neighbours <= 100 or not 1 <= workers <= 32:
        raise DuplicatesError("--neighbours must be 1..100 and workers 1..32")
    settings = settings_or_default(settings)
    facets = list(settings.get("catalogue.facets") or [])

    def filter_clause(alias):
        return and_(true(), *filter_clauses(filters, excludes, facets, alias))

    filter_clause(embeddings)            # validate the filters before any work
    started = time.perf_counter()
    try:
        with store.engine_in_use(settings, engine) as engine:
            with engine.connect() as connection:
                column, dims = compared_column(store.column_dimensions(connection))
                threshold = check_threshold(threshold, column)
                pictures = connection.execute(text("select count(*) from artvec.embeddings")).scalar()
            pairs = candidate_pairs(engine, threshold, filter_clause, neighbours, workers, dims, column)
            with engine.connect() as connection:
                decided = decided_pairs(connection)
                kept = [pair for key, pair in pairs.items() if key not in decided]
                components = union_find_groups(kept)
                ids = sorted({member for pair in kept for member in (pair.a, pair.b)}, key=str)
                details = member_details(connection, ids)
    except DBAPIError as error:
        raise DuplicatesError(f"duplicate search failed: {first_line(error)}") from None
    groups = build_groups(components, details)
    return DuplicatesReport(threshold, groups, pictures, time.perf_counter() - started,
                            sum(1 for key in pairs if key in decided), column)


def build_groups(components: list[list[Pair]], details: dict[Any, dict]) -> list[Group]:
    for pairs in components:
        for pair in pairs:
            pair.exact = pair.exact or details[pair.a]["sha256"] == details[pair.b]["sha256"]
    ordered = sorted(components, key=lambda pairs: (min(p.distance for p in pairs), str(pairs[0].a)))
    groups = []
    for number, pairs in enumerate(ordered, start=1):
        pairs.sort(key=lambda p: (p.distance, str(p.a), str(p.b)))
        ids = sorted({member for pair in pairs for member in (pair.a, pair.b)}, key=str)
        groups.append(Group(number, [details[i] for i in ids], pairs))
    return groups


# ---- decisions ----------------------------------------------------------------------------

def decide(engine: "Engine", a: Any, b: Any, decision: str, who: str | None = None) -> dict:
    """Record that pictures ``a`` and ``b`` are the same picture, different pictures, or variants.

    Needs only INSERT on artvec.duplicate_decisions (and SELECT on artvec.embeddings)."""
    from .search import SearchError, known_artwork

    if decision not in DECISIONS:
        raise DuplicatesError(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
    if str(a) == str(b):
        raise DuplicatesError(f"a decision is about two pictures, not {a} with itself")
    if who is not None and not 0 < len(who) <= 200:
        raise DuplicatesError("who decided: 1 to 200 characters")
    try:
        with engine.begin() as connection:
            first, second = pair_key(known_artwork(connection, a), known_artwork(connection, b))
            row = connection.execute(text("""
                insert into artvec.duplicate_decisions
                    (artwork_a, artwork_b, sha256_a, sha256_b, decision, decided_by)
                select x.artwork_id, y.artwork_id, x.image_sha256, y.image_sha256, :decision,
                       coalesce(:who, current_user)
                from artvec.embeddings x, artvec.embeddings y
                where x.artwork_id = :a and y.artwork_id = :b
                returning artwork_a, artwork_b, decision, decided_by, decided_at"""),
                {"a": first, "b": second, "decision": decision, "who": who}).mappings().one()
    except SearchError as error:
        raise DuplicatesError(str(error)) from None
    except DBAPIError as error:
        raise DuplicatesError(f"cannot record the decision: {first_line(error)}") from None
    return dict(row)


def decisions(engine: "Engine", limit: int = 100) -> list[dict]:
    """The latest decisions, newest first, with whether they still hold (bytes unchanged)."""
    with engine.connect() as connection:
        rows = connection.execute(text("""
            select d.artwork_a, d.artwork_b, d.decision, d.decided_by, d.decided_at,
                   (a.image_sha256 = d.sha256_a and b.image_sha256 = d.sha256_b) is true as current
            from artvec.duplicate_decisions d
            left join artvec.embeddings a on a.artwork_id = d.artwork_a
            left join artvec.embeddings b on b.artwork_id = d.artwork_b
            order by d.decided_at desc limit :limit"""), {"limit": limit}).mappings().all()
    return [dict(row) for row in rows]


def grant_decisions(engine: "Engine", role: str) -> list[str]:
    """Let a read-only role (``artvec grant-read``) record decisions: INSERT on their table only."""
    from .catalogue import quote_identifier

    statement = f"grant insert on artvec.duplicate_decisions to {quote_identifier(role, 'role')}"
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as error:
        raise ArtvecError(f"grant failed: {first_line(error)}") from None
    return [statement]


# ---- output -------------------------------------------------------------------------------

def as_csv(report: DuplicatesReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "artwork_a", "artwork_b", "distance", "exact", "location_a", "location_b"])
    for group in report.groups:
        where = {member["artwork_id"]: member["image_location"] for member in group.members}
        for pair in group.pairs:
            writer.writerow([group.number, pair.a, pair.b, f"{pair.distance:.6f}", str(pair.exact).lower(),
                             where[pair.a], where[pair.b]])
    return out.getvalue()


def as_text(report: DuplicatesReport) -> str:
    lines = []
    for group in report.groups:
        kind = "exact duplicates" if group.exact else "near duplicates"
        lines.append(f"group {group.number}: {len(group.members)} pictures, {kind}")
        for pair in group.pairs:
            lines.append(f"  {pair.a!s:>12} ~ {pair.b!s:<12} {pair.distance:.4f}" + ("  same bytes" if pair.exact else ""))
    vector = "copy vector" if report.column == "copy" else "combined vector"
    lines.append(f"{len(report.groups)} groups among {report.pictures} pictures (threshold {report.threshold} "
                 f"on the {vector}, "
                 f"{report.suppressed} decided pairs left out) in {report.seconds:.1f} s")
    return "\n".join(lines)


def write_sheets(settings: "Settings", report: DuplicatesReport, folder: Path) -> list[Path]:
    """One contact sheet per group in ``folder``: group-0001.png, ..."""
    from .sheet import resolve_location, write_sheet

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DuplicatesError(f"cannot create {folder}: {error}") from None
    root = settings.get("catalogue.image_root")
    written = []
    for group in report.groups:
        nearest = {}
        for pair in group.pairs:
            for member in (pair.a, pair.b):
                nearest[member] = min(nearest.get(member, 9.0), pair.distance)
        tiles = [(f"#{m['artwork_id']} d={nearest[m['artwork_id']]:.3f}"[:30],
                  resolve_location(m["image_location"], root)) for m in group.members]
        tiles[0] = (f"group {group.number}\n{tiles[0][0]}", tiles[0][1])
        written.append(write_sheet(tiles[0], tiles[1:], folder / f"group-{group.number:04d}.png"))
    return written
