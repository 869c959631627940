"""`artvec demo` end to end on an embedded server of its own, and the README's SQL against its data."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine, text

from artvec import db
from helpers import psql_path, run_cli

REPO = Path(__file__).resolve().parent.parent


def test_demo_end_to_end_and_again(private_home, env):
    demo_env = {key: value for key, value in env.items() if key != "ARTVEC_DATABASE_URL"}
    demo_env["ARTVEC_HOME"] = str(private_home)
    result = run_cli("demo", env=demo_env)
    out = result.stdout
    assert "sync: 40 embedded" in out
    # every vector column the default fills gets its HNSW index, the copy vector's too
    assert "index: HNSW on embedding, style, colour, copy;" in out

    sections = re.findall(r"\n(More like this[^\n]*)\n((?:  #.*\n?)+)", out)
    assert len(sections) == 3
    for title, body in sections:
        rows = [line.split() for line in body.strip().splitlines()]
        assert len(rows) == 5, title
        query = title.split("#")[1].split()[0]
        assert all(row[0] != f"#{query}" for row in rows)            # never its own neighbour
        distances = [float(row[1]) for row in rows]
        assert distances == sorted(distances)
    assert all(line.rstrip().endswith("1830s") for line in sections[1][1].strip().splitlines())
    assert all("Katsushika Hokusai" in line for line in sections[2][1].strip().splitlines())
    unfiltered = sections[0][1].strip().splitlines()
    assert sum("Gustave Doré" in line for line in unfiltered) >= 4   # the engraving finds engravings

    groups = re.findall(r"^group +\d+ +(\d+) pictures .*\(artist: ([^;]+?) (\d+)[;,]", out, re.M)
    assert len(groups) == 5                                            # five manners, five groups asked for
    assert len({artist for _, artist, _ in groups}) == 5               # each led by another artist: k-means finds them
    assert sum(int(count) for _, _, count in groups) >= 38             # at most 2 of 40 in another manner's group
    with Image.open(re.search(r"^map: (\S+)", out, re.M).group(1)) as picture:
        assert picture.format == "PNG" and picture.width >= 1000

    sheet = Path(re.search(r"contact sheet: (\S+)", out).group(1))
    with Image.open(sheet) as picture:
        picture.verify()
    with Image.open(sheet) as picture:
        assert picture.format == "PNG" and picture.width >= 600

    url = run_cli("db", "url", env=demo_env).stdout.strip()
    engine = create_engine(db.sqlalchemy_url(url))
    with engine.connect() as connection:
        counts = connection.execute(text("""
            select (select count(*) from demo.artists), (select count(*) from demo.eras),
                   (select count(*) from demo.pictures), (select count(*) from artvec.embeddings),
                   (select count(*) from artvec.embeddings where facets ? 'era' and facets ? 'artist')""")).one()
        assert tuple(counts) == (5, 4, 40, 40, 40)
        indexes = set(connection.execute(text(
            "select indexdef from pg_indexes where schemaname = 'artvec' and indexdef like '%hnsw%'")).scalars())
        assert any("(embedding vector_l2_ops)" in index for index in indexes)
    engine.dispose()

    readme_sql = re.search(r'psql "\$\(artvec db url\)" -c "\n(.*?)"\n```', (REPO / "README.md").read_text(), re.S)
    listed = subprocess.run([str(psql_path()), url, "-At", "-F", "|", "-c", readme_sql.group(1)],
                            capture_output=True, text=True, check=True).stdout.strip().splitlines()
    assert len(listed) == 5 and all(not line.startswith("1|") for line in listed)

    similar = run_cli("similar", "3", "-k", "4", "--filter", "era=1880s", env=demo_env).stdout.splitlines()
    assert similar[0].split() == ["id", "distance", "artist", "era"]          # facets the sync stored
    assert len(similar) == 5 and all(line.split()[-1] == "1880s" for line in similar[1:])

    judge = re.search(r"^judge it: artvec (evaluate .*)$", out, re.M).group(1).split()   # the line the demo prints
    assert judge[-2:] == ["--image-root", str(private_home / "demo" / "images")]
    evaluated = json.loads(run_cli(*judge, "--duplicates", "2", "--json", env=demo_env).stdout)
    assert evaluated["labels"] == 5 and evaluated["queries"] == 40
    assert evaluated["overall"]["p@10"] > 2 * evaluated["chance_p@k"]          # five manners, well apart
    assert len(evaluated["per_label"]) == 5
    dup = evaluated["near_duplicates"]
    assert dup["pictures"] == 2 and dup["copies"] == 16 and 0 < dup["threshold"] < 2
    assert 0 <= dup["copies_caught"] <= 1 and dup["distances"]["p05"] <= dup["distances"]["p95"]

    # without the folder the stored relative names cannot be read: the figures still come, and the copies say why not
    rootless = json.loads(run_cli("evaluate", "--label", "artist", "--duplicates", "2", "--json", env=demo_env).stdout)
    assert rootless["overall"] == evaluated["overall"]
    skipped = rootless["near_duplicates"]["skipped"]
    assert re.search(r"e\.g\. \S+\.png: .*--image-root \(catalogue\.image_root\), which is not set$", skipped)

    again = run_cli("demo", env=demo_env).stdout
    assert "sync: 0 embedded, 40 unchanged" in again and "(0 generated now)" in again
    assert re.search(r"5 groups of 40 pictures \(run 1,.*0 new pictures assigned", again)   # the stored groups


def test_demo_refuses_a_database_with_another_catalogue(env, engine):
    run_cli("init", env=env)
    with engine.begin() as connection:
        connection.execute(text("""
            insert into artvec.models (config_id, name, config, style_dim, colour_dim, dim)
            values ('x', 'x', '{}', 1, 1, 1)"""))
        dims = dict(connection.execute(text("""
            select attname, atttypmod from pg_attribute
            where attrelid = 'artvec.embeddings'::regclass and attname in ('embedding', 'style', 'colour')""")).all())
        zeros = {name: "[" + ",".join(["0"] * size) + "]" for name, size in dims.items()}
        connection.execute(text("""
            insert into artvec.embeddings (artwork_id, config_id, embedding, style, colour, image_sha256, image_location)
            values (777, 'x', :embedding, :style, :colour, '\\x00', 'real.jpg')"""), zeros)
    result = run_cli("demo", env=env, check=False)
    assert result.returncode == 1 and "holds 1 embeddings of another catalogue" in result.stderr
    with engine.connect() as connection:
        assert connection.execute(text("select count(*) from artvec.embeddings")).scalar() == 1
