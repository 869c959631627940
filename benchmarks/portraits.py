"""The painted portraits set: Battle for Wesnoth's unit portraits (Debian's ``wesnoth-1.16-data``,
``data/core/images/portraits``), labelled by the artist its credits file (``portraits/ARTISTS``) names. The
one set of *paintings* among the public sets: digital paintings of elves, soldiers, mages, orcs, drakes,
dwarves and the undead, each artist painting several peoples and several artists the same people (humans by
Kitty and by LordBob), so same-artist retrieval must find a hand across subjects, as in a library.

Only portraits credited to one artist alone are used (joint credits, alternates by others and the uncredited
left out): Kitty / Kathrin Polikeit 68, LordBob / Emilien Rotival 44, thespaceinvader / Philip Barber 20 and
Valkier / Chris Wilson 9 (141 portraits, 4 labels). Four labels are too few to resample, so the noise resamples
the peoples (the folders: elves, humans, orcs, drakes, …; paired across methods), as tiles.py resamples faces:
it says whether a lead holds for other subjects, not for the next artist. Each portrait is a PNG of about
400 × 400 on a transparent ground, composited on white as artvec reads it.

Needs the portraits: ``apt-get install wesnoth-1.16-data`` (146 MB), or ``apt-get download wesnoth-1.16-data &&
dpkg -x wesnoth-1.16-data_*.deb DIR`` and ``ARTVEC_WESNOTH_PORTRAITS=DIR/usr/share/games/wesnoth/1.16/data/core/
images/portraits``. Read in place: nothing to render or cache.

Two more sets of painted portraits serve ``scans.py --painted-basis`` as reference pictures for a whitening basis,
never as a benchmark: Wesnoth's portraits outside the set (joint credits, alternates, the uncredited: the same
artists' hands among them) and Naev's character portraits (Debian's ``naev-data``, ``dat/gfx/portraits``: 175 digital
paintings of 200 × 150 px made from one artist's parts, another game and other hands; ``apt-get install naev-data``
(350 MB), or unpack the .deb and set ``ARTVEC_NAEV_PORTRAITS`` to that folder).

Usage: python benchmarks/portraits.py   (lists the set; quality.py calls it with --sets ...,portraits)
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

PORTRAITS_DIR = "/usr/share/games/wesnoth/1.16/data/core/images/portraits"
NAEV_PORTRAITS_DIR = "/usr/share/naev/dat/gfx/portraits"


def _each(folder: str, *names: str) -> list[str]:
    return [f"{folder}/{name}.png" for name in names]


def _both(folder: str, *names: str) -> list[str]:
    """A unit's male and female portraits."""
    return [f"{folder}/{name}{sex}.png" for name in names for sex in ("", "+female")]


#: each artist's portraits, transcribed from the credits file (``ARTISTS``, "Current"): sole credits only
ARTISTS = {
    "Kitty": [
        *_each("elves", "fighter", "captain", "hero", "shaman", "druid", "sorceress", "shyde", "lord", "high-lord",
               "lady", "sylph"),
        *_both("elves", "archer", "marksman", "ranger"),
        *_both("humans", "dark-adept", "necromancer", "mage", "mage-red", "mage-white", "mage-silver", "mage-arch",
               "mage-light", "thief", "assassin", "footpad", "outlaw"),
        *_each("humans", "trapper", "ranger", "huntsman", "ruffian", "thug", "bandit"),
        *_each("goblins", "wolf-rider", "direwolver", "pillager"),
        *_each("merfolk", "enchantress", "priestess", "fighter", "hoplite", "triton", "hunter", "spearman", "netcaster"),
        *_each("undead", "ghost", "spectre", "shadow", "nightgaunt"),
        *_each("trolls", "whelp", "troll"),
        *_each("monsters", "gryphon", "giant-mudcrawler"),
        *_each("nagas", "fighter", "myrmidon"),
    ],
    "LordBob": [
        *_each("humans", "peasant", "spearman", "swordsman", "royal-guard", "pikeman", "halberdier", "javelineer",
               "sergeant", "lieutenant", "general", "marshal", "marshal-2", "woodsman", "bowman", "longbowman",
               "master-bowman", "horseman", "knight", "paladin", "cavalryman", "cavalier", "fencer", "duelist",
               "master-at-arms", "grand-knight", "grand-knight-2", "lancer", "swordsman-3", "royal-warrior"),
        *_each("orcs", "grunt", "grunt-3", "grunt-4", "grunt-5", "grunt-6", "warrior", "warlord", "archer", "assassin",
               "slayer", "crossbowman", "slurbow", "ruler", "ruler-2", "sovereign"),
    ],
    "thespaceinvader": [
        *_each("drakes", "fighter", "burner", "inferno", "flameheart", "hurricane", "enforcer", "warden"),
        *_each("saurians", "augur", "skirmisher"),
        *_each("dwarves", "dragonguard", "fighter", "guard", "lord", "sentinel", "thunderer", "ulfserker", "runemaster",
               "scout", "explorer"),
        *_each("woses", "ancient-wose"),
    ],
    "Valkier": _each("undead", "skeleton", "deathblade", "revenant", "draug", "draug-2", "ghoul", "archer", "banebow",
                     "bone-shooter"),
}


def portraits_dir() -> Path:
    return Path(os.environ.get("ARTVEC_WESNOTH_PORTRAITS", PORTRAITS_DIR))


def missing_tools() -> str | None:
    root = portraits_dir()
    if not (root / "ARTISTS").is_file():
        return (f"Wesnoth's portraits are not at {root} (apt-get install wesnoth-1.16-data, or set "
                "ARTVEC_WESNOTH_PORTRAITS to the portraits folder of an unpacked wesnoth-1.16-data .deb)")
    absent = [p for paths in ARTISTS.values() for p in paths if not (root / p).is_file()]
    if absent:
        return f"{root} lacks {len(absent)} of the credited portraits ({', '.join(absent[:3])}, …): another Wesnoth version?"
    return None


def portrait_set() -> list[tuple[Path, str, str]]:
    """[(png path, artist, people: the portrait's folder)] for every credited portrait."""
    root = portraits_dir()
    return [(root / p, artist, p.split("/")[0]) for artist, paths in ARTISTS.items() for p in paths]


def other_portraits() -> list[Path]:
    """Wesnoth's portraits that are not in the set (joint or other credits, or none), in a fixed order."""
    used = {path for path, _, _ in portrait_set()}
    return sorted(path for path in portraits_dir().rglob("*.png") if path not in used)


def naev_portraits() -> list[Path]:
    """Naev's character portraits (its placeholder "Portrait missing" left out), in a fixed order; a one-line error
    without them."""
    root = Path(os.environ.get("ARTVEC_NAEV_PORTRAITS", NAEV_PORTRAITS_DIR))
    found = sorted(path for path in root.rglob("*.png") if path.name != "none.png")
    if not found:
        raise SystemExit(f"error: Naev's portraits are not at {root} (apt-get install naev-data, or set "
                         "ARTVEC_NAEV_PORTRAITS to dat/gfx/portraits of an unpacked naev-data .deb)")
    return found


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from cards import require

    require(missing_tools())
    items = portrait_set()
    print(f"{len(items)} portraits at {portraits_dir()}: " + ", ".join(f"{a} {n}" for a, n in Counter(a for _, a, _ in items).items())
          + f"; {len({people for _, _, people in items})} peoples")


if __name__ == "__main__":
    main()
