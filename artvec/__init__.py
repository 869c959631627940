"""artvec: "more like this" for picture libraries, by style and colour, in PostgreSQL + pgvector."""

__version__ = "0.1.0"
