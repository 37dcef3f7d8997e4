"""How readable is the sheet music composer writes? Four checks over many pieces.

    python benchmarks/score_quality.py                          # val split of data/corpus
    python benchmarks/score_quality.py --corpus /tmp/c --split all --limit 20
    python benchmarks/score_quality.py --extra generated/ --extra more.mid   # add your MIDI

For every piece: MIDI → composer's MusicXML → re-read by music21 (and loaded by
verovio, whose warnings are counted), then composer.score.quality's checks:

    full_measures   fraction of measures (× staves) whose voices fill their time signature (goal 1.0)
    notatable       fraction of notes with a notatable duration (goal ≥ 0.98)
    key_signature   fraction of pieces whose key signature matches music21's key analysis (≥ 0.95)
    ledger_over_3   fraction of notes beyond three ledger lines (≤ 0.05)

By default (as ``composer score``) the analysed key is written; ``--key-source auto`` keeps
a file's own key signature (corpus pieces carry the source edition's, which for modal
music and for excerpts of modulating movements differs from what the analysis finds).

Generated pieces are added with ``--extra`` (files or folders of MIDI) once a model exists.
The last line printed is JSON; ``key_signature_if_analysed`` is what ``key_signature``
would be with ``--key-source analysis`` (and is for generated pieces, which carry no key).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

DEFAULT_STYLES = "bach,palestrina,irish,beethoven"


def corpus_pieces(corpus: Path, split: str, styles: list[str], limit: int | None,
                  fallback: int) -> list[tuple[str, Path]]:
    """Pieces of ``split`` per style; a style with none there borrows up to ``fallback``
    pieces of another split (splits go by movement, so a style of few movements — the
    Beethoven quartets — can have no val pieces at all)."""
    manifest = corpus / "manifest.jsonl"
    if not manifest.is_file():
        sys.exit(f"{manifest}: not found; build a corpus first (composer corpus build -o {corpus})")
    rows = [json.loads(line) for line in manifest.open(encoding="utf-8") if line.strip()]
    pieces: list[tuple[str, Path]] = []
    for style in styles:
        mine = [r for r in rows if r["style"] == style]
        chosen = [r for r in mine if split == "all" or r["split"] == split][:limit]
        if not chosen and mine and fallback:
            for other in ("test", "val", "train"):
                chosen = [r for r in mine if r["split"] == other][:fallback]
                if chosen:
                    print(f"{style}: no {split} pieces; using {len(chosen)} {other} pieces",
                          file=sys.stderr)
                    break
        pieces += [(style, corpus / r["midi"]) for r in chosen]
    return pieces


def extra_pieces(paths: list[str]) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
            found += [("extra", p) for p in files]
        elif path.is_file():
            found.append(("extra", path))
        else:
            sys.exit(f"{path}: no such file or folder")
    return found


def check_piece(path: Path, config: object) -> tuple[object, int, float, bool]:
    """(QualityCounts, verovio warnings, seconds, would the analysed key match) for one file."""
    import music21

    from composer.io.reader import read_score
    from composer.music.facts import estimate_key
    from composer.score.plan import key_from_name
    from composer.score.quality import check_stream
    from composer.score.render import engrave
    from composer.score.write import score_to_musicxml

    start = time.perf_counter()
    score = read_score(path)
    xml = score_to_musicxml(score, title=path.stem, config=config)
    seconds = time.perf_counter() - start
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = music21.converter.parseData(xml, format="musicxml", forceSource=True)
    counts = check_stream(stream, path.name)
    for warning in caught:
        counts.problems.append(f"{path.name}: music21 warned on re-reading: {warning.message}")
    _, messages = engrave(xml)
    estimated = estimate_key(score)
    analysed_sharps = counts.keys[-1][2]
    would_match = estimated is not None and key_from_name(estimated)[0] == analysed_sharps
    return counts, len(messages), seconds, would_match


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"), help="built corpus folder")
    parser.add_argument("--split", default="val", help="train, val, test or all (default val)")
    parser.add_argument("--styles", default=DEFAULT_STYLES, help=f"default {DEFAULT_STYLES}")
    parser.add_argument("--limit", type=int, default=None, help="at most N pieces per style")
    parser.add_argument("--fallback", type=int, default=20,
                        help="a style without pieces in --split borrows N from another split "
                             "(default 20; 0 turns this off)")
    parser.add_argument("--extra", action="append", default=[],
                        help="more MIDI files or folders (e.g. generated pieces); repeatable")
    parser.add_argument("--no-corpus", action="store_true", help="only the --extra pieces")
    parser.add_argument("--key-source", default="analysis", choices=("analysis", "auto", "file"),
                        help="analysis (default, as 'composer score'); auto: the file's key "
                             "signature, analysis where it has none")
    args = parser.parse_args()

    from composer.errors import ComposerError
    from composer.score.config import ScoreConfig
    from composer.score.quality import QualityCounts

    config = ScoreConfig(key_source=args.key_source)
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    pieces = [] if args.no_corpus else corpus_pieces(args.corpus, args.split, styles, args.limit,
                                                      args.fallback)
    pieces += extra_pieces(args.extra)
    if not pieces:
        sys.exit("no pieces to check")
    totals = QualityCounts()
    by_group: dict[str, QualityCounts] = {}
    verovio_warnings = 0
    analysed_match = 0
    failed = 0
    seconds = 0.0
    for group, path in pieces:
        try:
            counts, n_warnings, spent, would_match = check_piece(path, config)
        except ComposerError as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        totals.add(counts)
        by_group.setdefault(group, QualityCounts()).add(counts)
        verovio_warnings += n_warnings
        analysed_match += would_match
        seconds += spent
    print(f"{'group':<12}{'pieces':>7}{'full':>8}{'notat.':>8}{'key':>8}{'ledger>3':>10}")
    for group, counts in sorted(by_group.items()):
        s = counts.summary()
        print(f"{group:<12}{counts.pieces:>7}{s['full_measures']:>8.3f}{s['notatable']:>8.3f}"
              f"{s['key_signature']:>8.3f}{s['ledger_over_3']:>10.4f}")
    for problem in totals.problems[:20]:
        print(f"  {problem}")
    print(f"{totals.pieces} pieces, {failed} unreadable, {verovio_warnings} verovio warnings, "
          f"{seconds / max(1, totals.pieces):.2f} s per piece to MusicXML")
    print(f"key signatures: --key-source {args.key_source}; with --key-source analysis "
          f"{analysed_match}/{totals.pieces} would match the analysis")
    summary = totals.summary()
    summary["key_signature_if_analysed"] = round(analysed_match / max(1, totals.pieces), 4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
