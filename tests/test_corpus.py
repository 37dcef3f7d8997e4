from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import ABC_BOOK, END_OF_TRACK, header, midi_file, track

from composer.corpus.build import CorpusConfig, build_corpus, corpus_stats, read_manifest
from composer.corpus.convert import ConvertOptions, segment_bounds
from composer.corpus.sources import list_music21_inputs, split_abc_book, style_name
from composer.corpus.split import assign_splits, source_fingerprint, split_for
from composer.errors import CorpusError

MANIFEST_FIELDS = {"id", "style", "split", "source", "midi", "n_notes", "n_bars",
                   "time_signatures", "key", "sha256"}


@pytest.fixture(scope="module")
def small_music21_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(CorpusConfig(out_dir=out, styles=["bach", "irish", "chinese_folk"],
                              max_pieces_per_style=3, workers=1))
    return out


def test_three_style_build(small_music21_corpus: Path) -> None:
    records = read_manifest(small_music21_corpus)
    styles = {r["style"] for r in records}
    assert styles == {"bach", "irish", "chinese_folk"}
    report = json.loads((small_music21_corpus / "report.json").read_text())
    assert report["inputs"] == 9
    assert report["skipped_inputs"] == 0
    assert sum(s["pieces"] for s in report["styles"].values()) == len(records)


def test_manifest_fields(small_music21_corpus: Path) -> None:
    import hashlib

    for record in read_manifest(small_music21_corpus):
        assert set(record) >= MANIFEST_FIELDS
        assert record["split"] in {"train", "val", "test"}
        midi = small_music21_corpus / record["midi"]
        assert midi.parent.name == record["style"] and midi.stem == record["id"]
        assert hashlib.sha256(midi.read_bytes()).hexdigest() == record["sha256"]
        assert record["n_notes"] > 0 and record["n_bars"] > 0
        assert record["key"].endswith(("major", "minor"))
        assert record["source"]["path"]
    bach = [r for r in read_manifest(small_music21_corpus) if r["style"] == "bach"]
    assert all(r["n_notes"] > 100 for r in bach)  # all four voices, not just the soprano


def test_books_are_split_into_tunes(small_music21_corpus: Path) -> None:
    folk = [r for r in read_manifest(small_music21_corpus) if r["style"] == "chinese_folk"]
    assert [r["source"]["index"] for r in folk] == [0, 1, 2]
    assert len({r["source"]["path"] for r in folk}) == 1


def test_split_is_deterministic_and_rerun_is_incremental(
        small_music21_corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_corpus(CorpusConfig(out_dir=again, styles=["bach", "irish", "chinese_folk"],
                              max_pieces_per_style=3, workers=1))
    first = {r["id"]: (r["split"], r["sha256"]) for r in read_manifest(small_music21_corpus)}
    second = {r["id"]: (r["split"], r["sha256"]) for r in read_manifest(again)}
    assert first == second
    rerun = build_corpus(CorpusConfig(out_dir=again, styles=["bach", "irish", "chinese_folk"],
                                      max_pieces_per_style=3, workers=1))
    assert rerun.report["reused_from_cache"] == 9 and rerun.report["converted_now"] == 0


def test_split_proportions_and_stability() -> None:
    import hashlib

    splits = [split_for(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(4000)]
    assert 0.87 < splits.count("train") / 4000 < 0.93
    assert 0.035 < splits.count("val") / 4000 < 0.065
    assert split_for("0" * 64) == "train"  # a fixed point: the rule must never change silently


def _write_folder(root: Path) -> None:
    (root / "waltz").mkdir(parents=True)
    (root / "march").mkdir()
    (root / "waltz" / "a.mid").write_bytes(midi_file([60, 64, 67]))
    (root / "waltz" / "b.mid").write_bytes(midi_file([62, 65, 69]))
    (root / "march" / "c.mid").write_bytes(midi_file([67, 67, 72, 72]))
    (root / "march" / "c_copy.mid").write_bytes(midi_file([67, 67, 72, 72]))
    (root / "march" / "book.abc").write_text(ABC_BOOK)
    (root / "march" / "notes.txt").write_text("not music")


def test_folder_source_labelled_by_folders(tmp_path: Path) -> None:
    source = tmp_path / "in"
    _write_folder(source)
    out = tmp_path / "out"
    result = build_corpus(CorpusConfig(out_dir=out, sources=[str(source)], workers=1))
    by_id = {r["id"]: r for r in result.records}
    assert {r["style"] for r in result.records} == {"waltz", "march"}
    assert by_id["waltz-a"]["style"] == "waltz"
    # identical notes land in the same split
    assert by_id["march-c"]["split"] == by_id["march-c-copy"]["split"]
    # the broken tune of the ABC book is skipped, the rest of the book kept
    tunes = sorted(r["source"]["index"] for r in result.records if r["source"]["path"] == "march/book.abc")
    assert tunes == [0, 2]
    skipped = result.report["skipped"]
    assert [s["source"] for s in skipped] == ["march/book.abc#1"]
    assert "Bad chord" in skipped[0]["reason"] or "cannot parse" in skipped[0]["reason"]


@pytest.mark.parametrize("columns", [("path", "style"), ("midi_filename", "canonical_composer")])
def test_folder_source_labelled_by_csv(tmp_path: Path, columns: tuple[str, str]) -> None:
    source = tmp_path / "in"
    _write_folder(source)
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerow(["waltz/a.mid", "Johann Strauss"])
        writer.writerow(["march/c.mid", "John Philip Sousa"])
    result = build_corpus(CorpusConfig(out_dir=tmp_path / "out", sources=[str(source)],
                                       labels=str(labels), workers=1))
    assert {(r["source"]["path"], r["style"]) for r in result.records} == {
        ("waltz/a.mid", "johann_strauss"), ("march/c.mid", "john_philip_sousa")}
    assert any(i["reason"].startswith("no style") for i in result.report["ignored"])


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    source = tmp_path / "in" / "mixed"
    source.mkdir(parents=True)
    good = midi_file()
    bad = {
        "empty.mid": b"",
        "truncated.mid": good[:30],
        "not_midi.mid": b"hello, I am not a MIDI file at all",
        "smpte.mid": midi_file(division=0xE728),
        "tpq0.mid": midi_file(division=0),
        "tracks5000.mid": header(1, 5000) + track(END_OF_TRACK) * 5000,
        "notes1m.mid": header(0, 1) + track(b"\x00\x90\x3c\x40\x01\x80\x3c\x00" * 1_000_000
                                            + END_OF_TRACK),
    }
    for name, data in bad.items():
        (source / name).write_bytes(data)
    (source / "good.mid").write_bytes(good)
    result = build_corpus(CorpusConfig(out_dir=tmp_path / "out", sources=[str(tmp_path / "in")],
                                       workers=2))
    assert [r["id"] for r in result.records] == ["mixed-good"]
    reasons = {Path(s["source"]).name: s["reason"] for s in result.report["skipped"]}
    assert set(reasons) == set(bad)
    assert "empty" in reasons["empty.mid"]
    assert "SMPTE" in reasons["smpte.mid"]
    assert "0 ticks" in reasons["tpq0.mid"]
    assert "5000 tracks" in reasons["tracks5000.mid"]
    assert "1000000 notes" in reasons["notes1m.mid"]
    assert "not a MIDI file" in reasons["not_midi.mid"]


def test_segments_of_long_pieces() -> None:
    options = ConvertOptions(out_dir=Path("."), segment_bars=32, max_whole_bars=48)
    assert segment_bounds(48, options) == [(0, 48)]
    assert segment_bounds(100, options) == [(0, 32), (32, 64), (64, 100)]
    assert segment_bounds(120, options) == [(0, 32), (32, 64), (64, 96), (96, 120)]


def test_long_piece_becomes_excerpts(tmp_path: Path) -> None:
    source = tmp_path / "in" / "long"
    source.mkdir(parents=True)
    (source / "scale.mid").write_bytes(midi_file([60 + i % 12 for i in range(4 * 100)]))
    result = build_corpus(CorpusConfig(out_dir=tmp_path / "out", sources=[str(tmp_path / "in")],
                                       workers=1))
    assert [r["n_bars"] for r in result.records] == [32, 32, 36]
    # one piece, one split: its excerpts never sit on both sides
    whole = source_fingerprint([r["fingerprint"] for r in result.records])
    assert {r["split"] for r in result.records} == {split_for(whole)}
    assert sum(r["n_notes"] for r in result.records) == 400


def test_music21_listing_and_abc_books() -> None:
    listing = list_music21_inputs(["german_folk", "chinese_folk"])
    books = {i.rel for i in listing.inputs}
    assert "essenFolksong/erk5.abc" in books  # a book music21 loses whole when parsed at once
    assert not any(Path(b).name.startswith("test") for b in books)
    assert all(Path(b).name.startswith("han") for i in listing.inputs
               if i.style == "chinese_folk" for b in [i.rel])
    tunes = split_abc_book("%header\nA:x\nX:1\nT:a\nK:C\nC|\nX:2\nT:b\nK:C\nD|\n")
    assert tunes == ["A:x\nX:1\nT:a\nK:C\nC|\n", "A:x\nX:2\nT:b\nK:C\nD|\n"]


def test_unknown_style_and_empty_source(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown style"):
        build_corpus(CorpusConfig(out_dir=tmp_path / "o", styles=["jazz"]))
    with pytest.raises(CorpusError, match="not a folder"):
        build_corpus(CorpusConfig(out_dir=tmp_path / "o", sources=[str(tmp_path / "none")]))
    with pytest.raises(CorpusError, match="no manifest"):
        corpus_stats(tmp_path)


def test_stats(small_music21_corpus: Path) -> None:
    table = corpus_stats(small_music21_corpus)
    assert set(table) == {"bach", "irish", "chinese_folk"}
    assert all(row["minutes"] > 0 and row["notes"] > 0 for row in table.values())


def test_style_names() -> None:
    assert style_name("Johann Sebastian Bach") == "johann_sebastian_bach"
    assert style_name("  ") == "unknown"


def test_a_tenth_broken_loses_no_good_piece(tmp_path: Path) -> None:
    source = tmp_path / "in"
    good = {}
    for number in range(18):
        style = ("waltz", "march")[number % 2]
        (source / style).mkdir(parents=True, exist_ok=True)
        name = f"{style}/tune{number:02d}.mid"
        (source / name).write_bytes(midi_file([60 + number % 12, 62 + number, 64, 55 + number]))
        good[name] = f"{style}-tune{number:02d}"
    (source / "waltz" / "cut.mid").write_bytes(midi_file()[:40])
    (source / "march" / "noise.mid").write_bytes(bytes(range(256)))
    for attempt in ("first", "again"):  # the re-run takes its results from the cache
        result = build_corpus(CorpusConfig(out_dir=tmp_path / "out", sources=[str(source)], workers=2))
        assert sorted(r["id"] for r in result.records) == sorted(good.values()), attempt
        assert sorted(s["source"] for s in result.report["skipped"]) == ["march/noise.mid", "waltz/cut.mid"]
        assert all(s["reason"].startswith(s["source"]) for s in result.report["skipped"])
        assert result.report["skipped_fraction"] == 0.1
    assert result.report["reused_from_cache"] == 20


def _excerpts(style: str, path: str, n: int, salt: str = "") -> list[dict]:
    import hashlib

    return [{"id": f"{path}-s{i:02d}", "style": style, "source": {"path": path},
             "fingerprint": hashlib.sha256(f"{salt}{path}{i}".encode()).hexdigest()}
            for i in range(n)]


def test_splits_follow_source_pieces_and_small_styles_keep_held_out_pieces() -> None:
    records = [r for m in range(16) for r in _excerpts("mozart", f"k{m}.mxl", 6)]
    records += [r for m in range(400) for r in _excerpts("bach", f"bwv{m}.mxl", 1)]
    assign_splits(records)
    by_source: dict[str, set[str]] = {}
    for r in records:
        by_source.setdefault(r["source"]["path"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in by_source.values())
    mozart = {next(iter(by_source[f"k{m}.mxl"])) for m in range(16)}
    assert {"train", "val", "test"} <= mozart  # 16 movements: the hash alone may hold none out
    bach = [r["split"] for r in records if r["style"] == "bach"]
    assert 0.85 < bach.count("train") / len(bach) < 0.95
    again = [dict(r) for r in records]
    assign_splits(again)
    assert [r["split"] for r in again] == [r["split"] for r in records]


def test_copies_of_a_piece_share_a_split_and_tiny_styles_stay_in_train() -> None:
    first = _excerpts("irish", "book1.abc", 3)
    copy = [{**r, "id": r["id"] + "-copy", "source": {"path": "book2.abc"}} for r in first]
    pair = _excerpts("haydn", "op1.mxl", 2) + _excerpts("haydn", "op2.mxl", 2)
    records = first + copy + pair
    assign_splits(records)
    assert {r["split"] for r in first} == {r["split"] for r in copy}
    assert {r["split"] for r in pair} <= {"train", "val", "test"}
    assert len({r["split"] for r in pair}) <= 2  # too few pieces to force any out


def test_style_summary_counts_the_most_voices_a_tenth_of_the_pieces_have(tmp_path: Path) -> None:
    import json

    import symusic

    from composer.corpus.build import style_summary

    (tmp_path / "midi").mkdir()
    rows = []
    for number, parts in enumerate([4] * 17 + [6, 6, 8]):  # 6 voices in 2 of 20, 8 in 1 of 20
        score = symusic.Score(480)
        for part in range(parts):
            track = symusic.Track(f"v{part}", 52, False)
            track.notes.append(symusic.Note(0, 480, 60 + part, 80))
            score.tracks.append(track)
        name = f"midi/p{number}.mid"
        score.dump_midi(str(tmp_path / name))
        rows.append({"id": f"p{number}", "style": "bach", "split": "train", "midi": name, "key": "C major"})
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    entry = style_summary(tmp_path)["bach"]
    assert entry["voices"] == 4 and entry["most_voices"] == 6
    from composer.music.harmony import ChordCounts

    assert ChordCounts.from_json(entry["chords"]).beats == 20  # one beat of each train piece, for harmonize
