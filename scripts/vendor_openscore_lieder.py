"""Select songs of the OpenScore Lieder corpus and vendor them for sfgym's ``piano-v2`` corpus (run once).

The OpenScore Lieder corpus (https://github.com/OpenScore/Lieder, CC0 1.0) holds ~1,400 19th- and early
20th-century songs for voice and piano, with a MusicXML (``.mxl``) export beside every MuseScore file.
sfgym uses their *piano parts*. This script picks a varied subset, copies the ``.mxl`` files unchanged to
``sfgym/data/scores/openscore-lieder/`` and writes ``sfgym/data/scores/sources.tsv`` (one row per file:
source repository, commit, path, licence, composer, title, the piece's tempo) and the licence file
``sfgym/data/scores/LICENSE.md``. ``sfgym.data.corpus`` reads ``sources.tsv``.

Usage (needs a checkout or snapshot of the Lieder repository; nothing else)::

    python scripts/vendor_openscore_lieder.py /path/to/Lieder --commit <sha>

Selection, deterministic:
- voice and piano only (two parts, the second on two staves);
- the composer died in 1945 or earlier (public domain for life+70 years and in the US: the corpus is
  drawn from public-domain first editions);
- a tempo in the source's first metronome mark that is not MuseScore's default 120;
- 30-170 s at that tempo (measured on the voice part's measures, tempo changes ignored);
- at most ``per_composer`` songs per composer (more for the largest collections), chosen by CRC-32 of the
  file name;
- then those in ``FAILED`` are dropped (not replaced): songs that sfgym's corpus check
  (``python -m sfgym.data.corpus_check --corpus piano-v2 --engrave``) rejects, that last over 180 s at the
  notated tempo (tempo changes and all) or whose piano part is sparse (under 1.5 notes per second:
  chords under a recitative).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
import zlib
from pathlib import Path

REPO = "OpenScore/Lieder"
LICENCE = "CC0-1.0"
OUT = Path(__file__).resolve().parents[1] / "sfgym" / "data" / "scores"
SUBDIR = "openscore-lieder"

# Death years of composers missing from the corpus' data/composers.tsv (Wikipedia).
EXTRA_DEATHS = {
    "Flégier,_Ange": 1927, "Paladilhe,_Émile": 1926, "Arne,_Thomas": 1778, "Barnard,_Charlotte_Alington": 1869,
    "Tosti,_Francesco_Paolo": 1916, "Hensel,_Fanny": 1847, "Leoncavallo,_Ruggero": 1919, "Massenet,_Jules": 1912,
    "Zemlinsky,_Alexander_von": 1942, "Berlioz,_Hector": 1869, "Chopin,_Frédéric": 1849, "Donaudy,_Stefano": 1925,
    "Liszt,_Franz": 1886, "Verdi,_Giuseppe": 1901, "Berg,_Alban": 1935, "Rossini,_Gioachino": 1868,
}
MAX_DEATH_YEAR = 1945
MORE_PER_COMPOSER = {"Brahms,_Johannes": 4, "Schubert,_Franz": 4, "Schumann,_Robert": 4, "Hensel,_Fanny": 3,
                     "Wolf,_Hugo": 3, "Fauré,_Gabriel": 3, "Mahler,_Gustav": 3, "Chaminade,_Cécile": 3}
# Songs dropped after the check (`python -m sfgym.data.corpus_check --corpus piano-v2 --engrave`), with why.
FAILED: dict[str, str] = {
    "lc29748842.mxl": "TostiFP Sogno: 6 of 654 noteheads outside the sheet's 200-row cut",
    "lc30346709.mxl": "FlegierA Le-cor: 1 of 1365 noteheads outside the sheet's 200-row cut",
    "lc30893624.mxl": "WolfH Auf-einer-Wanderung: 185 s at the notated tempo (over 180 s)",
    "lc4976777.mxl": "SchumannR Im-wunderschonen-Monat-Mai: 11 of 300 noteheads outside the sheet's 200-row cut",
    "lc4999590.mxl": "ChaminadeC Labsente: 2 of 1266 noteheads outside the sheet's 200-row cut",
    "lc5103883.mxl": "HenselF Ferne: 1 of 181 noteheads outside the sheet's 200-row cut",
    "lc5598547.mxl": "FaureG Mandoline: 17 of 811 noteheads outside the sheet's 200-row cut",
    "lc6135958.mxl": "FaureG Larmes: 23 of 1122 noteheads outside the sheet's 200-row cut",
    "lc6138105.mxl": "FaureG La-rose: 1 of 924 noteheads outside the sheet's 200-row cut",
    "lc6156587.mxl": "JaellM Baisers-perdus: 1 of 1863 noteheads outside the sheet's 200-row cut",
    "lc6480349.mxl": "CorderF O-Sun-That-Wakenest: sparse piano part: 40 notes in 165 s",
    "lc6583966.mxl": "AbramsH The-Orphans-Prayer: 1 of 1037 noteheads outside the sheet's 200-row cut",
    "lc6635391.mxl": "BonisM Le-chat-sur-le-toit-Op-93: 16 of 815 noteheads outside the sheet's 200-row cut",
}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _musicxml_root(path: Path) -> ET.Element:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist()
                    if not n.startswith("META-INF") and n.endswith((".xml", ".musicxml")))
        return ET.fromstring(archive.read(name))


def _survey(path: Path) -> dict | None:
    """Parts, first tempo and length in quarter notes of one ``.mxl``, or None if not voice + piano."""
    root = _musicxml_root(path)
    staves = []
    for score_part in root.find("part-list").findall("score-part"):
        part = root.find(f"part[@id='{score_part.get('id')}']")
        element = part.find("measure/attributes/staves")
        staves.append(int(element.text) if element is not None else 1)
    if staves != [1, 2]:
        return None
    tempos = [float(s.get("tempo")) for s in root.iter("sound") if s.get("tempo")]
    divisions, quarters = 1, 0.0
    for measure in root.find("part").findall("measure"):
        element = measure.find("attributes/divisions")
        if element is not None:
            divisions = int(element.text)
        position = longest = 0
        for element in measure:
            if element.tag == "note" and element.find("chord") is None and element.find("duration") is not None:
                position += int(element.findtext("duration"))
            elif element.tag == "backup":
                position -= int(element.findtext("duration"))
            elif element.tag == "forward":
                position += int(element.findtext("duration"))
            longest = max(longest, position)
        quarters += longest / divisions
    return {"tempo": tempos[0] if tempos else None, "quarters": quarters}


def _slug(text: str, limit: int) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = "".join(c if c.isalnum() else " " for c in ascii_text).split()
    return "-".join(words)[:limit].strip("-") or "song"


def _piece_name(composer_dir: str, song_dir: str, score_id: str) -> str:
    last, _, first = composer_dir.partition(",_")
    initials = "".join(w[0] for w in first.replace("_", " ").split() if w[0].isupper())
    song = song_dir.split("_", 1)[1] if song_dir[:1].isdigit() and "_" in song_dir else song_dir
    return f"{_slug(last, 20).replace('-', '')}{_slug(initials, 4)}__lc{score_id}__{_slug(song, 32)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lieder", type=Path, help="checkout of github.com/OpenScore/Lieder")
    parser.add_argument("--commit", required=True, help="the checkout's commit (recorded per file)")
    parser.add_argument("--per-composer", type=int, default=1)
    args = parser.parse_args()

    composers = {_nfc(r["path"]): r for r in csv.DictReader(
        open(args.lieder / "data" / "composers.tsv", encoding="utf-8"), delimiter="\t")}
    titles = {r["id"]: r["name"] for r in csv.DictReader(
        open(args.lieder / "data" / "scores.tsv", encoding="utf-8"), delimiter="\t")}
    candidates: dict[str, list[tuple[int, Path, dict]]] = {}
    for path in sorted((args.lieder / "scores").glob("*/*/*/lc*.mxl")):
        composer_dir = _nfc(path.parts[-4])
        died = composers[composer_dir]["died"] if composer_dir in composers else EXTRA_DEATHS.get(composer_dir)
        if not died or int(died) > MAX_DEATH_YEAR:
            continue
        survey = _survey(path)
        if survey is None or survey["tempo"] in (None, 120.0):
            continue
        seconds = survey["quarters"] / survey["tempo"] * 60
        if 30 <= seconds <= 170:
            candidates.setdefault(composer_dir, []).append((zlib.crc32(path.name.encode()), path, survey))

    target = OUT / SUBDIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    rows = []
    for composer_dir in sorted(candidates):
        quota = MORE_PER_COMPOSER.get(composer_dir, args.per_composer)
        for _, path, survey in sorted(candidates[composer_dir], key=lambda c: c[0])[:quota]:
            if path.name in FAILED:
                continue
            score_id = path.stem[2:]
            relative = path.relative_to(args.lieder).as_posix()
            info = composers.get(composer_dir)
            composer = info["name"] if info else composer_dir.partition(",_")[2].replace("_", " ") + " " + \
                composer_dir.partition(",_")[0].replace("_", " ")
            work = _nfc(path.parts[-3]).replace("_", " ")
            title = titles.get(score_id, _nfc(path.parts[-2]).replace("_", " "))
            shutil.copyfile(path, target / path.name)
            rows.append({
                "name": _piece_name(composer_dir, _nfc(path.parts[-2]), score_id),
                "file": f"{SUBDIR}/{path.name}",
                "composer": _nfc(composer),
                "title": _nfc(title if work == "_" else f"{work}: {title}") + " (piano part)",
                "tempo_qpm": f"{survey['tempo']:g}",
                "licence": LICENCE,
                "source_repo": f"https://github.com/{REPO}",
                "commit": args.commit,
                "source_path": _nfc(relative),
                "musescore_url": f"https://musescore.com/score/{score_id}",
            })
    with open(OUT / "sources.tsv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    _write_licence(rows)
    print(f"vendored {len(rows)} songs by {len({r['composer'] for r in rows})} composers into {target}")


def _write_licence(rows: list[dict]) -> None:
    lines = [
        "# Licences of the vendored scores",
        "",
        "The files under this directory are MusicXML encodings of public-domain compositions, copied unchanged",
        f"from the OpenScore Lieder corpus (https://github.com/{REPO}), whose encodings are dedicated to the",
        "public domain under CC0 1.0 Universal (https://creativecommons.org/publicdomain/zero/1.0/; the",
        "repository's LICENSE.txt). Every composer died in 1945 or earlier. sfgym uses the piano part of each",
        "song only (voice and lyrics are dropped when a dataset is built). `sources.tsv` is the machine-readable",
        "version of the table below; `scripts/vendor_openscore_lieder.py` made both.",
        "",
        "| file | composer | title | licence | source (repository, commit, path) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['file']} | {row['composer']} | {row['title']} | {row['licence']} | "
                     f"{row['source_repo']} @ {row['commit'][:12]}: {row['source_path']} |")
    (OUT / "LICENSE.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
