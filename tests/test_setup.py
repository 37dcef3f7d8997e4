"""Set-up on a fresh machine: a missing cairo library, Python 3.10, the package list."""

from __future__ import annotations

import builtins
import configparser
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import midi_file

from composer.cli import cli

ROOT = Path(__file__).resolve().parents[1]
# What cairocffi raises on import where libcairo is missing (it dlopens the library then)
NO_CAIRO = OSError("no library called \"cairo-2\" was found\nno library called \"cairo\" was found\n"
                   "cannot load library 'libcairo.so.2': libcairo.so.2: cannot open shared object file")


@pytest.fixture
def no_cairo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing cairocffi or cairosvg fails as it does on a machine without libcairo."""
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] in ("cairocffi", "cairosvg"):
            raise NO_CAIRO
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "libcairo2" in lines[0] and "cairo library" in lines[0]
    return lines[0]


@pytest.mark.parametrize("suffix", [".pdf", ".png"])
def test_score_without_cairo_is_one_line_and_writes_nothing(tmp_path: Path, no_cairo: None,
                                                            suffix: str) -> None:
    midi = tmp_path / "tune.mid"
    midi.write_bytes(midi_file())
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(cli, ["score", str(midi), "-o", str(out / f"x{suffix}")])
    line = _one_error_line(result)
    assert suffix.lstrip(".").upper() in line
    assert list(out.iterdir()) == []


def test_generate_with_pdf_score_without_cairo_writes_nothing(tmp_path: Path, no_cairo: None) -> None:
    """``--score x.pdf`` fails before the MIDI file is written, not after."""
    result = CliRunner().invoke(cli, ["generate", "--style", "bach", "--bars", "2",
                                      "-o", str(tmp_path / "x.mid"), "--score", str(tmp_path / "x.pdf")])
    line = _one_error_line(result)
    assert "x.pdf" in line
    assert list(tmp_path.iterdir()) == []


def test_svg_and_musicxml_need_no_cairo(tmp_path: Path, no_cairo: None) -> None:
    midi = tmp_path / "tune.mid"
    midi.write_bytes(midi_file())
    for name in ("x.svg", "x.musicxml"):
        result = CliRunner().invoke(cli, ["score", str(midi), "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "x-1.svg").stat().st_size > 0 and (tmp_path / "x.musicxml").stat().st_size > 0


def test_training_config_reads_toml_without_tomllib() -> None:
    """On Python 3.10 (no ``tomllib``) the config module uses ``tomli``, the same parser."""
    code = (
        "import sys, types, tomllib\n"
        "tomli = types.ModuleType('tomli')\n"
        "tomli.loads, tomli.TOMLDecodeError = tomllib.loads, tomllib.TOMLDecodeError\n"
        "sys.modules['tomli'], sys.modules['tomllib'] = tomli, None\n"
        "from composer.train import config\n"
        "assert config.tomllib is tomli, config.tomllib\n"
        f"c = config.load_config(__import__('pathlib').Path({str(ROOT / 'configs' / 'tiny.toml')!r}),"
        " ['max_steps=7'])\n"
        "assert c.max_steps == 7\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_setup_cfg_lists_every_subpackage() -> None:
    """A new folder with an ``__init__.py`` under ``composer/`` must be in setup.cfg (CI checks
    the built wheel too); ``composer.models`` is the top-level ``models/`` folder, and its
    ``default`` bundle (with ``evaluation/``) is data."""
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    listed = set(setup["options"]["packages"].split())
    source = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "composer").rglob("__init__.py")}
    assert sorted(source - listed) == []
    data = {"composer.models", "composer.models.default", "composer.models.default.evaluation",
            "composer.web.static"}
    assert listed - source == data
    mapping = dict(line.split("=") for line in setup["options"]["package_dir"].split("\n") if line.strip())
    assert {k.strip(): v.strip() for k, v in mapping.items()} == {"composer.models": "models"}
    assert (ROOT / "models" / "__init__.py").is_file()
    assert 'tomli>=1.1; python_version < "3.11"' in setup["options"]["install_requires"]
