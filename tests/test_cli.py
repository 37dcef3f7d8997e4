from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import midi_file

from composer.cli import cli


def test_help_lists_commands_without_heavy_imports() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from composer.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('torch', 'music21', 'miditok', 'symusic') if m in sys.modules]\n"
        "print(result.output)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout
    assert "corpus" in out.stdout and "Examples" in out.stdout


def test_python_dash_m_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "composer", "--version"], capture_output=True,
                         text=True, check=True)
    assert "composer" in out.stdout


def test_corpus_build_and_stats_commands(tmp_path: Path) -> None:
    source = tmp_path / "in" / "minuet"
    source.mkdir(parents=True)
    (source / "one.mid").write_bytes(midi_file())
    (source / "broken.mid").write_bytes(b"MThd\x00")
    out = tmp_path / "corpus"
    runner = CliRunner()
    result = runner.invoke(cli, ["corpus", "build", str(tmp_path / "in"), "-o", str(out),
                                 "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "1 pieces in 1 styles" in result.output
    assert "skipped minuet/broken.mid" in result.output
    stats = runner.invoke(cli, ["corpus", "stats", str(out), "--json"])
    assert stats.exit_code == 0
    assert json.loads(stats.output)["minuet"]["pieces"] == 1
    table = runner.invoke(cli, ["corpus", "stats", str(out)])
    assert "minuet" in table.output and "total" in table.output


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["corpus", "stats", str(tmp_path)],
                 ["corpus", "build", "--styles", "jazz", "-o", str(tmp_path / "o")],
                 ["corpus", "build", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output
        assert "Traceback" not in result.output


def test_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["corpus", "build", "--styles", "bach", "-o", str(blocker)])
    assert result.exit_code == 2
    assert "not a folder" in result.output
