"""README stays true: every command and setting is documented, CI runs the README's commands."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from artvec.cli import app
from artvec.config import SETTINGS, env_name

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def command_paths(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_every_command_and_option_is_in_the_readme():
    root = typer.main.get_command(app)
    paths = list(command_paths(root))
    assert len(paths) >= 12
    for path in paths:
        assert f"artvec {' '.join(path)}" in README, path
        command = root
        for name in path:
            command = command.commands[name]
        for parameter in command.params:
            for option in parameter.opts:
                if option.startswith("--") and option != "--help":
                    assert option in README, (path, option)


def test_every_setting_is_in_the_readme():
    for key in SETTINGS:
        assert f"`{key}`" in README and f"`{env_name(key)}`" in README, key


def test_ci_runs_the_readme_install_and_test_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick_start, re.S)
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert demo.endswith("&& artvec demo") and tests.endswith("&& python -m pytest -q")
    install = "pip install -e '.[dev]'"
    ci = (REPO / ".ci" / "run").read_text()
    assert install in demo and install in tests and install in ci
    assert "python -m pytest -q" in ci


def test_readme_search_sql_is_a_tested_recipe():
    """The README's SQL is the docs/sql.md recipe that tests/test_search.py runs verbatim."""
    block = README.split("## Search: the SQL the website sends", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    assert block.startswith("-- recipe: within-era") and block in (REPO / "docs" / "sql.md").read_text()


def test_readme_pins_of_earlier_defaults_keep_their_ids():
    """The artvec.toml blocks README gives to keep the previous default's, artvec 0.2's and 0.1's vectors name
    those configurations."""
    import tomllib

    from artvec.embedding import EmbeddingConfig

    upgrading = README.split("**Upgrading from artvec 0.1 or 0.2, or from an earlier default.**", 1)[1].split("\n## ", 1)[0]
    pins = [tomllib.loads(block)["embedding"] for block in re.findall(r"```toml\n(.*?)```", upgrading, re.S)]
    ids = [EmbeddingConfig.from_dict(pin).config_id for pin in pins]
    assert ids == ["vgg19-style-b72a9dc7ebe1", "vgg19-style-452b0579749d", "vgg19-style-817b32d85a47", "vgg19-style-b107c1ada1e6", "vgg19-style-db9551dd9a66", "vgg19-style-d45103eacdb8", "vgg19-style-2449b08fa7b6", "vgg19-style-1150cb5a1cda", "vgg19-style-5a0ded065610", "vgg19-style-88341e4d2f28",
                   "gram-vgg19-1662e531f17e"]
    assert EmbeddingConfig().config_id in upgrading          # the new default's id, as README says
