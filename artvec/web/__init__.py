"""``artvec serve``: the curators' page over artvec's store (FastAPI + Jinja2, no JavaScript build)."""
