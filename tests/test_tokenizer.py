from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import symusic
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.corpus.build import CorpusConfig, build_corpus, read_manifest
from composer.errors import ConfigError, DecodingError
from composer.music.keys import key_from_name
from composer.tokens.roundtrip import RoundTrip, round_trip, score_notes
from composer.tokens.settings import TokenizerSettings, style_token
from composer.tokens.shards import TokenizeConfig, read_meta, read_split, tokenize_corpus
from composer.tokens.tokenizer import Tokenizer, load_tokenizer
from composer.tokens.training import train_tokenizer

STYLES = ["bach", "chinese_folk", "haydn", "irish"]
VOCAB = 900


@dataclass
class Tiny:
    corpus: Path  # a built corpus: 2 chorales, 2 Chinese and 2 Irish tunes, a Haydn movement
    tokenizer_dir: Path
    tokenizer: Tokenizer
    records: list[dict[str, Any]]
    tokens_dir: Path  # shards with augmentation


_TINY: dict[str, Tiny] = {}


def build_tiny(factory: pytest.TempPathFactory) -> Tiny:
    """One tiny corpus, tokenizer and shard set per test session (shared with test_grammar)."""
    if "tiny" not in _TINY:
        root = factory.mktemp("tokenizer")
        corpus = root / "corpus"
        build_corpus(CorpusConfig(out_dir=corpus, styles=STYLES, max_pieces_per_style=2, workers=1))
        records = read_manifest(corpus)
        haydn = [r for r in records if r["style"] == "haydn"]
        keep = {r["id"] for r in records if r["style"] != "haydn"} | {r["id"] for r in haydn[:2]}
        records = [r for r in records if r["id"] in keep]
        (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        result = train_tokenizer(corpus, root / "tok", TokenizerSettings(vocab_size=VOCAB), workers=1)
        tokens = root / "tokens"
        tokenize_corpus(TokenizeConfig(corpus, root / "tok", tokens, workers=1))
        _TINY["tiny"] = Tiny(corpus, root / "tok", result.tokenizer, records, tokens)
    return _TINY["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return build_tiny(tmp_path_factory)


def _score(tiny: Tiny, record: dict[str, Any]) -> symusic.Score:
    return symusic.Score(str(tiny.corpus / record["midi"]))


def test_style_tokens_are_in_the_vocabulary_and_open_every_sequence(tiny: Tiny) -> None:
    tok = tiny.tokenizer
    assert set(tok.style_ids) == {*STYLES, "any"}
    for style, token_id in tok.style_ids.items():
        assert tok.base_vocab[token_id] == style_token(style)
    assert tok.base_vocab[tok.style_ids["chinese_folk"]] == "Style_chinese-folk"
    for record in tiny.records:
        ids = tok.encode_score(_score(tiny, record), record["style"])
        assert ids[0] == tok.style_ids[record["style"]]
        assert ids[-1] == tok.eos_id
        assert tok.eos_id not in ids[1:-1] and not set(ids[1:]) & set(tok.style_ids.values())
    prompt = tok.encode_score(_score(tiny, tiny.records[0]), "any", eos=False)
    assert prompt[0] == tok.style_ids["any"] and prompt[-1] != tok.eos_id


def test_unknown_style_is_refused(tiny: Tiny) -> None:
    with pytest.raises(ConfigError, match="unknown style 'jazz'"):
        tiny.tokenizer.encode_score(_score(tiny, tiny.records[0]), "jazz")


def test_vocabulary_is_bpe_trained_and_survives_save_and_reload(tiny: Tiny) -> None:
    tok = tiny.tokenizer
    assert tok.vocab_size == VOCAB
    assert any(len(entry) > 1 for entry in tok.entries)  # BPE merged something
    again = load_tokenizer(tiny.tokenizer_dir)
    assert again.entries == tok.entries
    assert again.style_ids == tok.style_ids  # special tokens survive a reload
    assert again.sha256 == tok.sha256 == read_meta(tiny.tokens_dir)["tokenizer_sha256"]
    record = tiny.records[0]
    assert again.encode_score(_score(tiny, record), record["style"]) == \
        tok.encode_score(_score(tiny, record), record["style"])


def test_missing_tokenizer_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="composer tokenizer train"):
        load_tokenizer(tmp_path)


def test_round_trip_keeps_the_quantized_notes(tiny: Tiny) -> None:
    total = RoundTrip(0, 0, 0)
    for record in tiny.records:
        result = round_trip(tiny.tokenizer, _score(tiny, record), record["style"])
        assert result.ratio >= 0.99, (record["id"], result)
        total += result
    assert total.source_notes > 1000 and total.ratio >= 0.99


def test_four_part_chorale_keeps_every_voice(tiny: Tiny) -> None:
    record = next(r for r in tiny.records if r["style"] == "bach")
    score = _score(tiny, record)
    voices = [t for t in score.tracks if t.note_num()]
    assert len(voices) >= 4 and {t.program for t in voices} == {52}
    decoded = tiny.tokenizer.decode_ids(tiny.tokenizer.encode_score(score, "bach"))
    # same-program voices are merged into one choir track, but no note is lost
    assert decoded.note_num() == score.note_num() == record["n_notes"]
    assert sorted({t.program for t in decoded.tracks}) == [52]


def test_quartet_keeps_its_instruments(tiny: Tiny) -> None:
    record = next(r for r in tiny.records if r["style"] == "haydn")
    score = _score(tiny, record)
    decoded = tiny.tokenizer.decode_ids(tiny.tokenizer.encode_score(score, "haydn"))
    assert {t.program for t in decoded.tracks} == {t.program for t in score.tracks if t.note_num()}


def test_decoding_without_style_or_opening_bar_still_gives_the_notes(tiny: Tiny) -> None:
    tok = tiny.tokenizer
    record = tiny.records[0]
    ids = tok.encode_score(_score(tiny, record), record["style"])
    full = score_notes(tok, tok.decode_ids(ids))
    assert score_notes(tok, tok.decode_ids(ids[1:])) == full  # no style token
    assert score_notes(tok, tok.decode_ids([*ids, 5, 6, 7])) == full  # junk after EOS


def _complete_notes(tok: Tokenizer, ids: Any) -> int:
    """Notes the grammar's repair keeps from ``ids``: one per Duration token (the note's last)."""
    kept = tok.grammar.repair_base(tok.expand(tok.valid_ids(ids)))
    return sum(tok.base_vocab[b].startswith("Duration_") for b in kept)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=-5, max_value=VOCAB + 5), max_size=400))
def test_arbitrary_ids_are_repaired_into_every_complete_note(tiny: Tiny, ids: list[int]) -> None:
    score = tiny.tokenizer.decode_ids(ids)  # no exception is caught anywhere on the way
    assert score.note_num() == _complete_notes(tiny.tokenizer, ids)
    again = symusic.Score.from_midi(score.dumps_midi())  # and it is writable MIDI
    assert again.note_num() == score.note_num()


@pytest.mark.parametrize(("ids", "notes"), [([], 0), (None, 0), ("abc", 0), ([[1, 2], [3, 4]], 0),
                                            (np.array([np.nan, 1e30, -1.0, 7.0]), 0), ([2] * 50, 0),
                                            ([3.5, 900, 2**40], 0), (np.arange(VOCAB), None)])
def test_odd_inputs_decode_to_what_the_repair_keeps(tiny: Tiny, ids: Any, notes: int | None) -> None:
    score = tiny.tokenizer.decode_ids(ids)
    assert score.note_num() == _complete_notes(tiny.tokenizer, ids)
    if notes is not None:
        assert score.note_num() == notes


def test_a_decoding_failure_is_raised_not_hidden(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> symusic.Score:
        raise RuntimeError("miditok bug")

    ids = tiny.tokenizer.encode_score(_score(tiny, tiny.records[0]), "bach")
    monkeypatch.setattr(tiny.tokenizer.remi, "decode", broken)
    with pytest.raises(DecodingError, match=r"miditok could not decode \d+ grammatical tokens "
                                            r"\(Bar_None TimeSig_.*RuntimeError: miditok bug"):
        tiny.tokenizer.decode_ids(ids)


def test_transposition_moves_every_pitch_or_refuses(tiny: Tiny) -> None:
    """``transpose_base`` + ``bpe`` (how the shards augment) = encoding the transposed score."""
    tok = tiny.tokenizer
    checked = 0
    for record in tiny.records:
        score = _score(tiny, record)
        base = tok.encode_base(score)
        pitches = sorted(n.pitch for t in score.tracks for n in t.notes)
        for shift in (-3, 5):
            moved = tok.transpose_base(base, shift)
            if pitches[0] + shift < 21 or pitches[-1] + shift > 108:  # the pitch range
                assert moved is None
                continue
            assert moved is not None and len(moved) == len(base)
            encoded = tok.encode_score(score.shift_pitch(shift), "any")
            assert tok.bpe(moved).tolist() == encoded[tok.prefix_len:-1]
            decoded = tok.decode_ids(tok.bpe(moved))
            assert sorted(n.pitch for t in decoded.tracks for n in t.notes) == [p + shift for p in pitches]
            checked += 1
    assert checked >= len(tiny.records)
    highest = max(n.pitch for r in tiny.records for t in _score(tiny, r).tracks for n in t.notes)
    record = next(r for r in tiny.records if any(n.pitch == highest for t in _score(tiny, r).tracks
                                                 for n in t.notes))
    assert tok.transpose_base(tok.encode_base(_score(tiny, record)), 108 - highest + 1) is None
    assert np.array_equal(tok.transpose_base(tok.encode_base(_score(tiny, record)), 0),
                          tok.encode_base(_score(tiny, record)))


def test_shards_follow_the_data_contract(tiny: Tiny) -> None:
    tok = tiny.tokenizer
    meta = read_meta(tiny.tokens_dir)
    assert meta["vocab_size"] == tok.vocab_size and meta["eos_id"] == tok.eos_id
    assert meta["pad_id"] == tok.pad_id and meta["bos_id"] is None
    assert meta["style_ids"] == tok.style_ids
    assert meta["augmentation"] == {"transpositions": list(range(-6, 7)), "mode": "precomputed"}
    by_id = {r["id"]: r for r in tiny.records}
    for split in ("train", "val", "test"):
        ids, rows = read_split(tiny.tokens_dir, split)
        assert ids.dtype == np.uint16 and len(ids) == meta["splits"][split]["tokens"]
        assert len(rows) == meta["splits"][split]["sequences"]
        assert len({r["id"] for r in rows}) == meta["splits"][split]["pieces"]
        offset = 0
        for row in rows:
            assert set(row) == {"id", "style", "offset", "length", "transpose"}
            assert row["offset"] == offset
            offset += row["length"]
            seq = ids[row["offset"]: row["offset"] + row["length"]]
            assert seq[0] == tok.style_ids[row["style"]] and seq[-1] == tok.eos_id
            assert by_id[row["id"]]["split"] == split and by_id[row["id"]]["style"] == row["style"]
            if split != "train":
                assert row["transpose"] == 0
            if row["transpose"] == 0:
                record = by_id[row["id"]]
                key = key_from_name(record.get("key"))
                assert seq.tolist() == tok.encode_score(_score(tiny, record), record["style"], key=key)
        assert offset == len(ids)
    train_rows = read_split(tiny.tokens_dir, "train")[1]
    shifts = {r["transpose"] for r in train_rows}
    assert shifts == set(range(-6, 7))
    assert meta["splits"]["train"]["sequences"] > 10 * meta["splits"]["train"]["pieces"]


def test_tokenize_is_incremental(tiny: Tiny, tmp_path: Path) -> None:
    first = tokenize_corpus(TokenizeConfig(tiny.corpus, tiny.tokenizer_dir, tmp_path, transpositions=(0,),
                                           workers=1))
    assert first.reused == 0
    before = (tmp_path / "train.bin").read_bytes()
    again = tokenize_corpus(TokenizeConfig(tiny.corpus, tiny.tokenizer_dir, tmp_path, transpositions=(0,),
                                           workers=1))
    assert again.reused == len(tiny.records)
    assert (tmp_path / "train.bin").read_bytes() == before
    assert again.meta["augmentation"] == {"transpositions": [0], "mode": "precomputed"}


def test_corpus_with_a_style_the_tokenizer_lacks_is_refused(tiny: Tiny, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    record = dict(tiny.records[0], style="jazz", midi=str(tiny.corpus / tiny.records[0]["midi"]))
    (corpus / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match="jazz"):
        tokenize_corpus(TokenizeConfig(corpus, tiny.tokenizer_dir, tmp_path / "out", workers=1))


def test_cli_train_and_tokenize(tiny: Tiny, tmp_path: Path) -> None:
    from composer.cli.tokenizer_cmds import tokenize, tokenizer

    runner = CliRunner()
    result = runner.invoke(tokenizer, ["train", str(tiny.corpus), "-o", str(tmp_path / "tok"),
                                       "--vocab-size", "800", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "800 ids" in result.output and (tmp_path / "tok" / "tokenizer.json").is_file()
    result = runner.invoke(tokenize, [str(tiny.corpus), "--tokenizer", str(tmp_path / "tok"),
                                      "-o", str(tmp_path / "tokens"), "--no-augment", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "tokens" / "meta.json").read_text())
    assert meta["vocab_size"] == 800 and meta["augmentation"]["transpositions"] == [0]
    for command in (["train", "--help"],):
        assert "Examples" in runner.invoke(tokenizer, command).output
    assert "Examples" in runner.invoke(tokenize, ["--help"]).output
