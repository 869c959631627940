"""The curators' page and its JSON API, over artvec's own store.

Pages: ``/`` "more like this" (by artwork id, uploaded picture or palette; by both, style,
colour or copy; facet filters and exclusions; a click on a result searches from it), ``/duplicates``
(the review queue, one click per decision), ``/thumb/{artwork_id}`` (thumbnails of stored
pictures only). API: ``/api/similar``, ``/api/similar/upload``, ``/api/duplicates``,
``/api/decisions`` (GET, POST); OpenAPI at ``/openapi.json``. The same validation as the CLI
(``artvec.search``, ``artvec.palette``, ``artvec.duplicates``): facet names checked, values
bound. Reads only, except decisions (INSERT on artvec.duplicate_decisions).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from fastapi import FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import bindparam, text

from .. import duplicates, search
from ..errors import ArtvecError
from ..palette import palette_vector
from .thumbnails import SIZES, Thumbnails, data_uri

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..config import Settings

MAX_K = 100
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_FACET_VALUES = 200
MULTIPART_OVERHEAD = 64 * 1024          # form fields and boundaries beside the picture
UPLOAD_PATHS = ("/upload", "/api/similar/upload")
BY = ("both", "style", "colour", "copy", "palette")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class BadRequest(ArtvecError):
    """A request the page or the API cannot serve as asked."""


class Curator:
    """What the page and the API do, over one engine."""

    def __init__(self, settings: "Settings", engine: "Engine", thumbnails: Thumbnails,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES):
        self.settings = settings
        self.engine = engine
        self.thumbnails = thumbnails
        self.max_upload_bytes = max_upload_bytes
        self.facets = list(settings.get("catalogue.facets") or [])
        self.config = settings.embedding_config()
        self._embedder = None
        self._embedder_lock = threading.Lock()

    # ---- facets ---------------------------------------------------------------------
    def facet_values(self) -> dict[str, list[str]]:
        values = {}
        with self.engine.connect() as connection:
            for name in self.facets:
                search.check_facet(name, self.facets)
                values[name] = list(connection.execute(text(
                    "select distinct facets->>:name from artvec.embeddings where facets ? :name "
                    "order by 1 limit :limit"), {"name": name, "limit": MAX_FACET_VALUES}).scalars())
        return values

    # ---- search -----------------------------------------------------------------------
    def similar(self, artwork_id: str | None = None, upload: bytes | None = None, colours: str | None = None,
                by: str = "both", filters: list[str] = (), excludes: list[str] = (), k: int = 12,
                expand: int | None = None) -> dict:
        if by not in BY:
            raise BadRequest(f"by must be one of {', '.join(BY)}, not {by!r}")
        if not 1 <= k <= MAX_K:
            raise BadRequest(f"k must be 1..{MAX_K}, not {k}")
        given = [item for item in (artwork_id, upload, colours) if item not in (None, "", b"")]
        if len(given) != 1 or (by == "palette") != bool(colours):
            raise BadRequest("search by an artwork id, an uploaded picture, or a palette (colours with by=palette)")
        wanted = {"filters": search.parse_filters(filters), "excludes": search.parse_filters(excludes), "k": k}
        if by == "palette":
            vector = palette_vector(colours, self.config.colour_bins)
            parts = {"colour": vector.tolist()}
            rows = search.search(self.settings, vector=parts["colour"], config_id=self.config.config_id,
                                 by="colour", engine=self.engine, expand=0, **wanted)
            query = {"colours": colours}
        elif upload:
            vectors = self.embed_upload(upload)
            parts = {"style": vectors.style.tolist(), "colour": vectors.colour.tolist()}
            part = vectors.part(by)
            if part is None:
                raise BadRequest("by=copy: the active configuration has no copy vector")
            rows = search.search(self.settings, vector=part.tolist(), config_id=self.config.config_id, by=by,
                                 engine=self.engine, expand=expand, **wanted)
            query = {"upload": True}
        else:
            rows = search.search(self.settings, artwork_id=artwork_id, by=by, engine=self.engine, expand=expand,
                                 **wanted)
            parts = None
            query = {"artwork_id": artwork_id}
        self.add_part_distances(rows, artwork_id if parts is None else None, parts or {})
        return {"query": {**query, "by": by, "filters": list(filters), "excludes": list(excludes), "k": k},
                "rows": [public_row(row) for row in rows]}

    def add_part_distances(self, rows: list[dict], artwork_id: Any, parts: dict) -> None:
        """Style and colour distances apart, beside the distance the search ranked by."""
        if not rows:
            return
        ids = [row["artwork_id"] for row in rows]
        with self.engine.connect() as connection:
            if artwork_id is not None:
                found = connection.execute(text("""
                    select e.artwork_id, e.style <-> q.style, e.colour <-> q.colour
                    from artvec.embeddings e, artvec.embeddings q
                    where q.artwork_id::text = :query and e.artwork_id in :ids""").bindparams(
                    bindparam("ids", expanding=True)), {"query": str(artwork_id), "ids": ids}).all()
            else:
                style = "e.style <-> cast(:style as vector)" if "style" in parts else "null::float8"
                colour = "e.colour <-> cast(:colour as vector)" if "colour" in parts else "null::float8"
                found = connection.execute(text(
                    f"select e.artwork_id, {style}, {colour} from artvec.embeddings e where e.artwork_id in :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                    {"ids": ids, **{name: str(vector) for name, vector in parts.items()}}).all()
        apart = {row[0]: (row[1], row[2]) for row in found}
        for row in rows:
            row["style_distance"], row["colour_distance"] = apart.get(row["artwork_id"], (None, None))

    def embed_upload(self, data: bytes):
        from ..embedding import Embedder

        if len(data) > self.max_upload_bytes:
            raise BadRequest(f"the upload is larger than {self.max_upload_bytes // (1024 * 1024)} MB")
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = Embedder(self.config, device=self.settings.get("sync.device"))
            result = next(iter(self._embedder.embed_stream([("upload", data)], batch_size=1)))[1]
        if isinstance(result, Exception):
            raise BadRequest(f"cannot read the uploaded picture: {result}")
        return result

    # ---- duplicates -------------------------------------------------------------------
    def duplicates(self, threshold: float | None = None, filters: list[str] = (), excludes: list[str] = ()):
        return duplicates.find_duplicates(self.settings, threshold, search.parse_filters(filters),
                                          search.parse_filters(excludes), engine=self.engine)

    def decide(self, a: str, b: str, decision: str, who: str | None) -> dict:
        return duplicates.decide(self.engine, a, b, decision, who or None)

    # ---- thumbnails -------------------------------------------------------------------
    def thumbnail(self, artwork_id: str, size: int) -> Path | None:
        if size not in SIZES:
            raise BadRequest(f"size must be one of {', '.join(map(str, SIZES))}")
        with self.engine.connect() as connection:
            row = connection.execute(text(
                "select image_location, encode(image_sha256, 'hex') from artvec.embeddings "
                "where artwork_id::text = :id"), {"id": artwork_id}).first()
        if row is None:
            return None
        return self.thumbnails.get(row[1], row[0], size)


def public_row(row: dict) -> dict:
    return {"artwork_id": row["artwork_id"], "distance": row["distance"],
            "style_distance": row.get("style_distance"), "colour_distance": row.get("colour_distance"),
            "facets": row.get("facets") or {}, "thumbnail": f"/thumb/{row['artwork_id']}"}


class DecisionIn(BaseModel):
    a: str = Field(max_length=200, description="artwork id of one picture")
    b: str = Field(max_length=200, description="artwork id of the other")
    decision: Literal["same", "different", "variant"]
    who: Optional[str] = Field(default=None, max_length=200, description="who decided (default: the database user)")


def create_app(settings: "Settings", engine: "Engine | None" = None, cache: Path | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    from .. import store

    engine = engine or store.engine_for_schema(settings)
    thumbnails = Thumbnails(cache or settings.home / "thumbnails", settings.get("catalogue.image_root"))
    curator = Curator(settings, engine, thumbnails, max_upload_bytes)
    app = FastAPI(title="artvec", version="1", docs_url=None, redoc_url=None,
                  description="More like this, palette search and duplicate review over artvec's store.")
    app.state.curator = curator

    @app.exception_handler(ArtvecError)
    async def artvec_error(request: Request, error: ArtvecError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(error)}, status_code=400)
        return HTMLResponse(f"<!doctype html><title>artvec</title><p class=error>error: {escape(str(error))}</p>"
                            "<p><a href=/>back</a>", status_code=400)

    @app.middleware("http")
    async def limit_uploads(request: Request, call_next):
        """Refuse an upload by its declared size, before any of it is read or spooled to disk."""
        if request.method == "POST" and request.url.path in UPLOAD_PATHS:
            declared = request.headers.get("content-length", "")
            if not declared.isdigit() or int(declared) > max_upload_bytes + MULTIPART_OVERHEAD:
                message = f"the upload is larger than {max_upload_bytes // (1024 * 1024)} MB (or has no Content-Length)"
                if request.url.path.startswith("/api/"):
                    return JSONResponse({"error": message}, status_code=413)
                return HTMLResponse(f"<!doctype html><p class=error>error: {message}</p>", status_code=413)
        return await call_next(request)

    # ---- pages ------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, id: Optional[str] = None, by: str = "both", colours: Optional[str] = None,
             filter: list[str] = Query(default=[]), exclude: list[str] = Query(default=[]), k: int = 12):
        filters, excludes = [f for f in filter if f], [x for x in exclude if x]
        context = {"by": by, "id": id or "", "colours": colours or "", "filters": filters, "excludes": excludes,
                   "k": k, "facet_values": curator.facet_values(), "result": None, "error": None,
                   "query_image": f"/thumb/{id}?size=320" if id else None}
        if colours and (by == "palette" or not id):         # the form sends both fields
            context["by"] = "palette"
            context["result"] = page_search(curator, context, colours=colours)
            context["swatches"] = swatches(colours) if context["result"] else []
        elif id:
            context["result"] = page_search(curator, context, artwork_id=id)
        return TEMPLATES.TemplateResponse(request, "search.html", context,
                                          status_code=400 if context["error"] else 200)

    @app.post("/upload", response_class=HTMLResponse, include_in_schema=False)
    async def upload_page(request: Request, picture: UploadFile = File(...), by: str = Form("both"),
                          k: int = Form(12), filter: list[str] = Form(default=[]),
                          exclude: list[str] = Form(default=[])):
        data = await read_limited(picture, curator.max_upload_bytes)
        filters, excludes = [f for f in filter if f], [x for x in exclude if x]
        context = {"by": by if by != "palette" else "both", "id": "", "colours": "", "filters": filters,
                   "excludes": excludes, "k": k, "facet_values": curator.facet_values(), "result": None,
                   "error": None, "query_image": None}
        context["result"] = page_search(curator, context, upload=data)
        if not context["error"]:
            context["query_image"] = upload_preview(data)
        return TEMPLATES.TemplateResponse(request, "search.html", context,
                                          status_code=400 if context["error"] else 200)

    @app.get("/duplicates", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request, threshold: Optional[float] = None, who: Optional[str] = None,
                    filter: list[str] = Query(default=[]), exclude: list[str] = Query(default=[])):
        report = curator.duplicates(threshold, [f for f in filter if f], [x for x in exclude if x])
        return TEMPLATES.TemplateResponse(request, "duplicates.html", {
            "report": report, "who": who or "", "threshold": threshold, "filters": filter,
            "decisions": duplicates.decisions(engine, 20)})

    @app.post("/duplicates/decide", include_in_schema=False)
    def decide_page(a: str = Form(...), b: str = Form(...), decision: str = Form(...), who: str = Form(""),
                    back: str = Form("/duplicates")):
        curator.decide(a, b, decision, who)
        return RedirectResponse(back if back.startswith("/duplicates") else "/duplicates", status_code=303)

    @app.get("/thumb/{artwork_id}", include_in_schema=False)
    def thumbnail(artwork_id: str, size: int = 320):
        path = curator.thumbnail(artwork_id, size)
        if path is None:
            return Response(status_code=404)
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    # ---- API --------------------------------------------------------------------------
    @app.get("/api/similar", tags=["search"])
    def api_similar(id: Optional[str] = Query(None, max_length=200, description="artwork id of the query"),
                    colours: Optional[str] = Query(None, max_length=2000, description="palette, e.g. #8b4513:60,#f5deb3:40"),
                    by: Literal["both", "style", "colour", "copy", "palette"] = "both",
                    filter: list[str] = Query(default=[], description="facet=value (repeatable)"),
                    exclude: list[str] = Query(default=[], description="facet=value to leave out (repeatable)"),
                    k: int = Query(12, ge=1, le=MAX_K),
                    expand: Optional[int] = Query(None, ge=0, le=search.MAX_EXPAND,
                                                  description="nearest pictures averaged into the query first "
                                                              "(default search.expand; 0: the plain distance)")) -> dict:
        """The k pictures nearest an artwork or a palette: distance (to the query, averaged with its nearest pictures
        first unless expand is 0), style and colour distances apart (to the query picture itself), facets."""
        return curator.similar(artwork_id=id, colours=colours, by=by, filters=filter, excludes=exclude, k=k,
                               expand=expand)

    @app.post("/api/similar/upload", tags=["search"])
    async def api_similar_upload(picture: UploadFile = File(..., description=f"at most {max_upload_bytes} bytes"),
                                 by: Literal["both", "style", "colour", "copy"] = Form("both"),
                                 k: int = Form(12, ge=1, le=MAX_K),
                                 filter: list[str] = Form(default=[]), exclude: list[str] = Form(default=[]),
                                 expand: Optional[int] = Form(None, ge=0, le=search.MAX_EXPAND)) -> dict:
        """The k pictures nearest an uploaded picture."""
        data = await read_limited(picture, curator.max_upload_bytes)
        return curator.similar(upload=data, by=by, filters=filter, excludes=exclude, k=k, expand=expand)

    @app.get("/api/duplicates", tags=["duplicates"])
    def api_duplicates(threshold: Optional[float] = Query(None, gt=0, le=2),
                       filter: list[str] = Query(default=[]), exclude: list[str] = Query(default=[])) -> dict:
        """Groups of near- and exact-duplicate pictures that nobody has decided yet."""
        return curator.duplicates(threshold, filter, exclude).as_dict()

    @app.get("/api/decisions", tags=["duplicates"])
    def api_decisions(limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
        """The latest decisions, newest first; ``current`` is false once a picture's bytes changed."""
        return duplicates.decisions(engine, limit)

    @app.post("/api/decisions", tags=["duplicates"], status_code=201)
    def api_decide(decision: DecisionIn) -> dict:
        """Record a decision about a pair: same picture, different pictures, or variant."""
        return curator.decide(decision.a, decision.b, decision.decision, decision.who)

    return app


def swatches(colours: str) -> list[tuple[str, float]]:
    """The palette as (#rrggbb, share in %) for the page."""
    from ..palette import parse_palette

    entries = parse_palette(colours)
    total = sum(weight for _, weight in entries)
    return [("#%02x%02x%02x" % rgb, 100 * weight / total) for rgb, weight in entries]


def page_search(curator: Curator, context: dict, **query) -> dict | None:
    try:
        return curator.similar(by=context["by"], filters=context["filters"], excludes=context["excludes"],
                               k=context["k"], **query)
    except ArtvecError as error:
        context["error"] = str(error)
        return None


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise BadRequest(f"the upload is larger than {limit // (1024 * 1024)} MB")
    if not data:
        raise BadRequest("the upload is empty")
    return data


def upload_preview(data: bytes) -> str | None:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.draft("RGB", (640, 640))
            return data_uri(picture)
    except Exception:  # noqa: BLE001 - only the preview is lost
        return None


def escape(value: str) -> str:
    import html

    return html.escape(value)


def serve(settings: "Settings", host: str = "127.0.0.1", port: int = 8000, cache: Path | None = None,
          say=print) -> None:
    import uvicorn

    app = create_app(settings, cache=cache)
    say(f"artvec: open http://{host}:{port} (API: /openapi.json); Ctrl-C stops")
    uvicorn.run(app, host=host, port=port, log_level="warning")
