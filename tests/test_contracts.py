"""Contracts with the private internals of libraries composer relies on.

composer reaches past three libraries' public APIs, each for a reason given where it
does: miditok's trained BPE model and its byte table (``composer/tokens/bpe.py``: the
cached bar-word encoder, the entry table), a C++ symbol of verovio's binary
(``composer/score/render.py``: verovio's log into a buffer instead of stderr) and
cairosvg's surface internals (``render.pdf_bytes``: many pages into one PDF). An upgrade
that changes one of them must fail here, not in a user's hands.
"""

from __future__ import annotations

import ctypes
import os
import re
from pathlib import Path

import numpy as np
import pytest
import symusic
from test_tokenizer import Tiny, build_tiny

MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="4.0"><part-list><score-part id="P1"><part-name>Flute</part-name>
</score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions>
<time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef>
</attributes><note><pitch><step>{step}</step><octave>5</octave></pitch><duration>4</duration>
<type>whole</type></note></measure></part></score-partwise>"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    return build_tiny(tmp_path_factory)


# ---- miditok: REMI._model, REMI._vocab_learned_bytes_to_tokens --------------------------------


def _scores(tiny: Tiny) -> list[symusic.Score]:
    return [symusic.Score(str(tiny.corpus / r["midi"])) for r in tiny.records]


def test_our_bpe_gives_miditoks_own_ids(tiny: Tiny) -> None:
    """``Tokenizer.bpe`` (bar words through ``_model``) = miditok's ``encode`` of the score."""
    tok = tiny.tokenizer
    bases, theirs = [], []
    for score in _scores(tiny):
        bases.append(np.asarray(tok.remi.encode(score, encode_ids=False).ids, dtype=np.int64))
        theirs.append(list(tok.remi.encode(score).ids))  # BPE by miditok itself
    assert any(len(t) < len(b) for t, b in zip(theirs, bases, strict=True))  # merges happened
    assert [tok.bpe(b).tolist() for b in bases] == theirs
    assert [ids.tolist() for ids in tok.bpe_many(bases)] == theirs  # through the warm cache too


def test_our_entry_table_expands_ids_as_miditok_decodes_them(tiny: Tiny) -> None:
    """``Tokenizer.entries`` (from ``_vocab_learned_bytes_to_tokens``) = miditok's own decoding."""
    from miditok import TokSequence

    tok = tiny.tokenizer
    for score in _scores(tiny):
        encoded = tok.remi.encode(score)
        sequence = TokSequence(ids=list(encoded.ids), are_ids_encoded=True)
        tok.remi.decode_token_ids(sequence)
        assert tok.expand(encoded.ids).tolist() == sequence.ids
    every = TokSequence(ids=list(range(tok.vocab_size)), are_ids_encoded=True)
    tok.remi.decode_token_ids(every)  # the whole vocabulary, the bare word marker aside
    assert tok.expand(range(tok.vocab_size)).tolist() == every.ids
    assert tok.vocab_size == tok.remi._model.get_vocab_size(with_added_tokens=True)
    assert tok.entries[: len(tok.base_vocab)] == [(i,) for i in range(len(tok.base_vocab))]
    tok.check_ids()  # base id i is still the BPE byte chr(i + CHR_OFFSET)


def test_the_fast_word_encoder_matches_the_full_pipeline(tiny: Tiny) -> None:
    """``_word_encoder`` calls ``_model.model.tokenize`` when the pipeline around it only
    adds the word marker; it must give what ``_model.encode`` gives, and must be taken."""
    from tokenizers import pre_tokenizers

    from composer.tokens.bpe import _word_encoder, bar_words

    tok = tiny.tokenizer
    hf = tok.remi._model
    assert hf.normalizer is None
    assert isinstance(hf.pre_tokenizer, pre_tokenizers.Metaspace)  # else the slow path is used
    assert hf.pre_tokenizer.prepend_scheme == "always"
    fast = _word_encoder(hf)
    words = {w for score in _scores(tiny) for w in bar_words(tok.encode_base(score), tok.bar_id)}
    assert len(words) > 50
    for word in sorted(words):
        assert fast(word) == hf.encode([word], is_pretokenized=True).ids


# ---- verovio: vrv::EnableLogToBuffer(bool), called through ctypes ------------------------------


def test_verovio_still_exports_its_log_switch_and_it_captures_warnings(capfd: pytest.CaptureFixture[str]
                                                                        ) -> None:
    import verovio

    from composer.score.render import _log_to_buffer, engrave

    library = Path(verovio.__file__).with_name("_verovio.abi3.so")
    assert library.is_file(), sorted(p.name for p in library.parent.iterdir())
    assert ctypes.CDLL(os.fspath(library))["_ZN3vrv17EnableLogToBufferEb"] is not None
    assert _log_to_buffer() is True
    pages, messages = engrave(MUSICXML.format(step="H").encode())
    assert pages and pages[0].startswith("<svg")
    assert messages == ["[Warning] MusicXML import: Unsupported step value 'H'"]
    assert engrave(MUSICXML.format(step="C").encode())[1] == []  # the buffer is per document
    captured = capfd.readouterr()
    assert "Unsupported" not in captured.err + captured.out  # in the buffer, not on stderr


# ---- cairosvg: parser.Tree, surface.PDFSurface and its _create_surface hook ----------------------


def _page() -> str:
    """One page of verovio's SVG, as ``engrave`` gives it to ``pdf_bytes`` and ``png_bytes``."""
    from composer.score.render import engrave

    [page], _ = engrave(MUSICXML.format(step="C").encode())
    return page


def test_cairosvg_pdf_surface_still_draws_through_its_create_surface_hook() -> None:
    import cairocffi
    from cairosvg.parser import Tree
    from cairosvg.surface import PDFSurface

    from composer.score.config import ScoreConfig
    from composer.score.render import POINTS_PER_INCH, for_cairo, page_size_points

    width, height = page_size_points(ScoreConfig())
    calls: list[tuple[float, float]] = []
    recording = cairocffi.RecordingSurface(cairocffi.CONTENT_COLOR_ALPHA, None)

    class Probe(PDFSurface):
        def _create_surface(self, w: float, h: float) -> tuple[object, float, float]:
            calls.append((w, h))
            return recording, w, h

    tree = Tree(bytestring=for_cairo(_page()).encode("utf-8"))
    Probe(tree, None, 96, output_width=width * 96 / POINTS_PER_INCH,
          output_height=height * 96 / POINTS_PER_INCH)
    assert len(calls) == 1 and calls[0] == pytest.approx((width, height))  # points, as pdf_bytes expects
    _, _, ink_width, ink_height = recording.ink_extents()
    assert ink_width > 50 and ink_height > 10  # the bar was drawn into our surface (84 x 26 points)


def test_pdf_bytes_puts_every_page_into_one_a4_document() -> None:
    from composer.score.render import pdf_bytes, png_bytes

    page = _page()
    pdf = pdf_bytes([page, page, page])
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 3
    boxes = {tuple(round(float(x)) for x in box)
             for box in re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)}
    assert boxes == {(595, 842)}  # A4 in points
    png = png_bytes(page)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") > 1000  # width in px
