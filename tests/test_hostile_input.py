"""Broken or hostile input given to every command: one line naming the file, exit 2.

The commands run in a child process, one per command with all of its cases in turn,
so that its peak memory (ru_maxrss) can be measured: under 2 GB, every case under
30 s of CPU, no traceback. Files that can be read (zero-length or dangling notes, RIFF) are
read, with a warning that says what was changed. For the batch commands (corpus build,
tokenize) a bad file sits in a folder next to a good one: the run reports it, keeps the
good piece and exits 0; a source or corpus that is unusable as a whole exits 2.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from bundle_fixture import tiny_bundle
from conftest import END_OF_TRACK, header, midi_file, note_events, track
from test_midi_io import BAD_FILES
from test_tokenizer import build_tiny

pytestmark = pytest.mark.slow

COMMANDS = ("score", "continue", "corpus", "tokenize")
MAX_SECONDS = 30.0  # CPU seconds per case: a fair measure on a shared machine ...
MAX_WALL_SECONDS = 120.0  # ... while a blocked read would still show here
MAX_PEAK_BYTES = 2 * 1024**3
GOOD = midi_file()


def _riff(smf: bytes) -> bytes:
    chunk = b"data" + len(smf).to_bytes(4, "little") + smf
    return b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"RMID" + chunk


def _musicxml_cut_short() -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="4.0"><part-list>'
            b'<score-part id="P1"><part-name>Flute</part-name></score-part></part-list>'
            b'<part id="P1"><measure number="1"><note><pitch><step>C</step><oct')


def _mxl_bomb() -> bytes:
    """An MXL archive of 200 KB that unpacks to 130 MB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", "<container/>")
        with archive.open("score.musicxml", "w") as member:
            for _ in range(130):
                member.write(b" " * 1024 * 1024)
    return buffer.getvalue()


def _musicxml_meter(beats: int) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="4.0"><part-list>'
            b'<score-part id="P1"><part-name>Flute</part-name></score-part></part-list><part id="P1">'
            b'<measure number="1"><attributes><divisions>1</divisions><time><beats>%d</beats>'
            b'<beat-type>4</beat-type></time></attributes><note><pitch><step>C</step><octave>5'
            b'</octave></pitch><duration>4</duration></note></measure></part></score-partwise>' % beats)


# name → (file name, content or "dir" / "fifo" / "missing", phrase of the error; or None when
# the file is read, and then the phrase of the warning, if any, after "+")
CASES: dict[str, tuple[str, bytes | str, str | None]] = {
    **{name: (f"{name}.mid", data, phrase) for name, (data, _, phrase) in BAD_FILES.items()},
    "riff_not_midi": ("wave.rmi", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24), "not RIFF-MIDI"),
    "riff_no_data": ("nodata.rmi", b"RIFF\x04\x00\x00\x00RMID", "without a 'data' chunk"),
    "abc_syntax": ("tune.abc", b"X:2\nT:B\nM:0/0\nK:C\nL:1/4\nabcd|\n", "cannot parse"),
    "musicxml_syntax": ("cut.musicxml", _musicxml_cut_short(), "cannot parse as musicxml"),
    "empty_abc": ("blank.abc", b"", "empty"),
    "abc_huge_meter": ("meter.abc", b"X:1\nM:399999/4\nL:1/4\nK:C\nCDEF|\n", "time signature of"),
    "abc_huge_note": ("long.abc", b"X:1\nM:4/4\nL:1/4\nK:C\nB99999|\n", "a note of 99999"),
    "musicxml_huge_meter": ("meter.musicxml", _musicxml_meter(4000), "time signature of 4000"),
    "mxl_bomb": ("bomb.mxl", _mxl_bomb(), "unpacks to more than"),
    "meter_255": ("meter.mid", midi_file(extra=b"\x00\xff\x58\x04\xff\x01\x18\x08"), None),
    "directory": ("folder.mid", "dir", "is a directory"),
    "fifo": ("pipe.mid", "fifo", "not a regular file"),
    "missing": ("gone.mid", "missing", "no such file"),
    "riff_wrapped": ("song.rmi", _riff(GOOD), None),
    "zero_length": ("zero.mid", header(1, 1) + track(b"\x00\x90\x3c\x40\x00\x80\x3c\x00"
                                                    + note_events([64, 67]) + END_OF_TRACK),
                    "+1 zero-length note lengthened"),
    "dangling": ("dangling.mid", header(1, 1) + track(note_events([64, 67]) + b"\x00\x90\x3e\x40"
                                                     + b"\x83\x60\xff\x2f\x00"),
                 "+1 note without a note-off left out"),
}
# where a command answers a case differently
OTHERWISE = {("continue", "meter_255"): "time signature 255/2 is not in this model's vocabulary"}
# cases that are not files inside a folder the batch commands walk
NOT_IN_FOLDERS = {"missing", "directory", "fifo"}

# whole-input problems: command → name → (arguments after the command, phrase of the error)
UNUSABLE = ("output_parent_is_a_file", "output_is_a_folder", "source_is_a_file", "only_bad_files",
            "missing_corpus", "damaged_manifest", "not_a_record", "no_tokenizer", "damaged_tokenizer")
UNUSABLE_PHRASES = {
    "output_parent_is_a_file": "does not exist", "output_is_a_folder": "is a folder",
    "source_is_a_file": "not a folder", "only_bad_files": "none of the",
    "missing_corpus": "no manifest.jsonl", "damaged_manifest": "not valid JSON",
    "not_a_record": "not a piece record", "no_tokenizer": "no tokenizer.json",
    "damaged_tokenizer": "not a composer tokenizer file",
}
UNUSABLE_FOR = {
    "score": ("output_parent_is_a_file", "output_is_a_folder"),
    "continue": ("output_parent_is_a_file", "output_is_a_folder"),
    "corpus": ("source_is_a_file", "only_bad_files", "output_parent_is_a_file"),
    "tokenize": ("missing_corpus", "damaged_manifest", "not_a_record", "only_bad_files",
                 "no_tokenizer", "damaged_tokenizer", "output_parent_is_a_file"),
}
UNUSABLE_PHRASES_BY_COMMAND = {("corpus", "output_parent_is_a_file"): "not a folder",
                               ("tokenize", "output_parent_is_a_file"): "not a folder"}


def _place(folder: Path, name: str) -> Path:
    """Write case ``name`` into ``folder``; its path."""
    file_name, content, _ = CASES[name]
    path = folder / file_name
    folder.mkdir(parents=True, exist_ok=True)
    if content == "dir":
        path.mkdir()
    elif content == "fifo":
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    return path


def _jobs(command: str, root: Path, factory: pytest.TempPathFactory) -> list[tuple[str, list[str]]]:
    good = root / "good.mid"
    good.write_bytes(GOOD)
    blocker = root / "blocker"
    blocker.write_text("a file where a folder should be")
    jobs: list[tuple[str, list[str]]] = []
    if command in ("score", "continue"):
        suffix = ".musicxml" if command == "score" else ".mid"
        options = [] if command == "score" else [
            "--style", "bach", "--bars", "1", "--model", str(tiny_bundle(factory))]
        (root / "out" / f"taken{suffix}").mkdir(parents=True)
        for name in CASES:
            out = root / "out" / f"{name}{suffix}"
            jobs.append((name, [command, str(_place(root / "in", name)), *options, "-o", str(out)]))
        for name, out in (("output_parent_is_a_file", blocker / f"x{suffix}"),
                          ("output_is_a_folder", root / "out" / f"taken{suffix}")):
            jobs.append((name, [command, str(good), *options, "-o", str(out)]))
    elif command == "corpus":
        for name in CASES:
            if name in NOT_IN_FOLDERS - {"fifo"}:
                continue
            source = root / "src" / name
            _place(source / "mixed", name)
            (source / "mixed" / "good.mid").write_bytes(GOOD)
            jobs.append((name, ["corpus", "build", str(source), "-o", str(root / "out" / name),
                                "--workers", "1", "-q"]))
        only_bad = root / "src" / "only_bad" / "mixed"
        only_bad.mkdir(parents=True)
        (only_bad / "a.mid").write_bytes(b"")
        (only_bad / "b.mid").write_bytes(BAD_FILES["truncated"][0])
        for name, source, out in (("source_is_a_file", good, root / "out" / "x"),
                                  ("only_bad_files", only_bad.parent, root / "out" / "only_bad"),
                                  ("output_parent_is_a_file", root / "src" / "riff_wrapped", blocker)):
            jobs.append((name, ["corpus", "build", str(source), "-o", str(out), "--workers", "1", "-q"]))
    else:
        tokenizer = str(build_tiny(factory).tokenizer_dir)
        for name in CASES:
            corpus = root / "corpora" / name
            path = _place(corpus / "midi" / "bach", name)
            _write_corpus(corpus, [("good", GOOD), (name, path)])
            jobs.append((name, ["tokenize", str(corpus), "--tokenizer", tokenizer, "-o",
                                str(root / "out" / name), "--no-augment", "--workers", "1", "-q"]))
        damaged = root / "corpora" / "damaged"
        _write_corpus(damaged, [("good", GOOD)])
        with (damaged / "manifest.jsonl").open("a") as handle:
            handle.write('{"id": "cut short", "sty\n')
        not_record = root / "corpora" / "not_record"
        _write_corpus(not_record, [("good", GOOD)])
        (not_record / "manifest.jsonl").write_text('[1, 2, 3]\n')
        (root / "badtok").mkdir()
        (root / "badtok" / "tokenizer.json").write_text('{"composer": 3}')
        only_bad_corpus = root / "corpora" / "only_bad"
        _write_corpus(only_bad_corpus, [("a", b"MThd"), ("b", b"")])
        for name, corpus, tok, out in (
                ("missing_corpus", root / "nothing", tokenizer, root / "out" / "u1"),
                ("damaged_manifest", damaged, tokenizer, root / "out" / "u2"),
                ("not_a_record", not_record, tokenizer, root / "out" / "u3"),
                ("only_bad_files", only_bad_corpus, tokenizer, root / "out" / "u4"),
                ("no_tokenizer", damaged, str(root / "nothing"), root / "out" / "u5"),
                ("damaged_tokenizer", damaged, str(root / "badtok"), root / "out" / "u6"),
                ("output_parent_is_a_file", root / "corpora" / "riff_wrapped", tokenizer, blocker)):
            jobs.append((name, ["tokenize", str(corpus), "--tokenizer", tok, "-o", str(out),
                                "--no-augment", "--workers", "1", "-q"]))
    return jobs


def _write_corpus(corpus: Path, pieces: list[tuple[str, bytes | Path]]) -> None:
    """A corpus folder as 'composer corpus build' leaves it: manifest.jsonl and midi/bach/."""
    rows = []
    for piece_id, content in pieces:
        if isinstance(content, bytes):
            path = corpus / "midi" / "bach" / f"{piece_id}.mid"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        else:
            path = content
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "0" * 64
        rows.append({"id": piece_id, "style": "bach", "split": "train",
                     "midi": path.relative_to(corpus).as_posix(), "n_notes": 8, "n_bars": 2,
                     "sha256": digest})
    (corpus / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


CHILD = """
import json, resource, sys, time, traceback
from click.testing import CliRunner
from composer.cli import cli
import composer.api, composer.score.write, composer.tokens.shards, music21, torch  # not timed

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

jobs, out = json.load(sys.stdin), sys.argv[1]
runner = CliRunner()
with open(out, "a") as handle:
    for name, args in jobs:
        handle.write(json.dumps({"started": name}) + "\\n")
        handle.flush()
        started, cpu_started = time.monotonic(), cpu()
        result = runner.invoke(cli, args)
        crash = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = "".join(traceback.format_exception(result.exception))[-3000:]
        handle.write(json.dumps({"name": name, "exit": result.exit_code, "stdout": result.stdout,
                                 "stderr": result.stderr, "seconds": time.monotonic() - started,
                                 "cpu_seconds": cpu() - cpu_started, "crash": crash}) + "\\n")
        handle.flush()
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    handle.write(json.dumps({"peak_bytes": peak * 1024}) + "\\n")
"""

_RUNS: dict[str, dict[str, Any]] = {}


def _outcomes(command: str, factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every case of ``command`` in one child process (once per test session)."""
    if command not in _RUNS:
        root = factory.mktemp(f"hostile-{command}")
        jobs = _jobs(command, root, factory)
        log = root / "results.jsonl"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        try:
            subprocess.run([sys.executable, "-c", CHILD, str(log)], input=json.dumps(jobs), text=True,
                           capture_output=True, timeout=120 + MAX_SECONDS * len(jobs), env=env, check=True)
        except subprocess.TimeoutExpired:
            lines = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
            hung = next((x["started"] for x in reversed(lines) if "started" in x), "?")
            pytest.fail(f"composer {command} hung on case {hung}")
        lines = [json.loads(x) for x in log.read_text().splitlines()]
        _RUNS[command] = {"results": {x["name"]: x for x in lines if "name" in x},
                          "peak_bytes": next(x["peak_bytes"] for x in lines if "peak_bytes" in x),
                          "root": root}
    return _RUNS[command]


def _table() -> list[tuple[str, str]]:
    rows = []
    for command in COMMANDS:
        skip = NOT_IN_FOLDERS - {"fifo"} if command == "corpus" else set()
        rows += [(command, name) for name in CASES if name not in skip]
        rows += [(command, name) for name in UNUSABLE_FOR[command]]
    return rows


@pytest.mark.parametrize(("command", "case"), _table(), ids=[f"{c}-{n}" for c, n in _table()])
def test_hostile_input(command: str, case: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    run = _outcomes(command, tmp_path_factory)
    outcome = run["results"][case]
    assert outcome["crash"] is None, outcome["crash"]
    assert outcome["cpu_seconds"] < MAX_SECONDS, outcome
    assert outcome["seconds"] < MAX_WALL_SECONDS, outcome
    assert run["peak_bytes"] < MAX_PEAK_BYTES
    errors = [line for line in outcome["stderr"].splitlines() if line.startswith("error:")]
    if case in UNUSABLE:
        phrase = UNUSABLE_PHRASES_BY_COMMAND.get((command, case), UNUSABLE_PHRASES[case])
        assert outcome["exit"] == 2 and outcome["stderr"].count("\n") == 1, outcome
        assert phrase in errors[0], outcome
        return
    file_name, _, phrase = CASES[case]
    phrase = OTHERWISE.get((command, case), phrase)
    if command in ("score", "continue"):
        _check_single_file(outcome, file_name, phrase)
        if command == "continue" and (phrase is None or phrase.startswith("+")):
            _check_continuation(run["root"], case)
    else:
        _check_batch(command, run["root"], case, outcome, file_name, phrase)


def _check_single_file(outcome: dict[str, Any], file_name: str, phrase: str | None) -> None:
    lines = outcome["stderr"].splitlines()
    if phrase is None or phrase.startswith("+"):  # read, maybe with a warning
        assert outcome["exit"] == 0, outcome
        assert outcome["stdout"].startswith("wrote "), outcome
        if phrase:
            assert lines == [line for line in lines if line.startswith("warning:")], outcome
            assert any(file_name in line and phrase[1:] in line for line in lines), outcome
        return
    assert outcome["exit"] == 2, outcome
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome
    assert file_name in lines[0] and phrase in lines[0], outcome
    assert outcome["stdout"] == ""


def _check_continuation(root: Path, case: str) -> None:
    """A prompt that was read was continued: the file holds its notes and new ones (decoding
    raises on failure instead of writing a silent continuation, and the last bar has a note)."""
    import warnings

    import symusic

    from composer.io.reader import read_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prompt = read_score(root / "in" / CASES[case][0])
    written = symusic.Score.from_file(str(root / "out" / f"{case}.mid"))
    assert written.note_num() > prompt.note_num() > 0, (case, written.note_num(), prompt.note_num())


def _check_batch(command: str, root: Path, case: str, outcome: dict[str, Any], file_name: str,
                 phrase: str | None) -> None:
    assert outcome["exit"] == 0, outcome
    skipped = [line for line in outcome["stderr"].splitlines() if line.startswith("skipped")]
    readable = phrase is None or phrase.startswith("+")
    if command == "corpus":
        manifest = (root / "out" / case / "manifest.jsonl").read_text().splitlines()
        ids = {json.loads(line)["id"] for line in manifest}
        assert "mixed-good" in ids
        if case == "fifo":  # never opened; listed as ignored in report.json
            report = json.loads((root / "out" / case / "report.json").read_text())
            assert any(i["reason"] == "not a regular file" for i in report["ignored"])
            return
        assert len(ids) == (2 if readable else 1), outcome
    else:
        meta = json.loads((root / "out" / case / "meta.json").read_text())
        assert meta["splits"]["train"]["pieces"] == (2 if readable else 1), outcome
    if readable:
        assert skipped == [], outcome
        if phrase and command == "corpus":  # what reading changed is said (tokenize reads
            warned = [line for line in outcome["stderr"].splitlines() if line.startswith("warning:")]
            assert any(file_name in line and phrase[1:] in line for line in warned), outcome
        return  # corpus files, which were checked when the corpus was built)
    assert len(skipped) == 1 and file_name in skipped[0], outcome
    if command == "corpus":  # tokenize reads every file as MIDI: its reasons differ
        assert phrase in skipped[0], outcome
