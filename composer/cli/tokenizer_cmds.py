"""``composer tokenizer train`` and ``composer tokenize``."""

from __future__ import annotations

from pathlib import Path

import click

from composer.cli.progress import progress_bar


@click.group()
def tokenizer() -> None:
    """Train the token vocabulary (miditok REMI + BPE, with style tokens)."""


@tokenizer.command(epilog="""\b
Examples:
  composer tokenizer train data/corpus -o data/tokenizer
  composer tokenizer train data/corpus -o /tmp/tok --vocab-size 2000 --workers 2
""")
@click.argument("corpus_dir", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder to write tokenizer.json into.")
@click.option("--vocab-size", type=click.IntRange(min=2, max=65535), default=4096, show_default=True,
              help="BPE vocabulary size, base tokens and style tokens included.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 uses every core.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(corpus_dir: Path, out_dir: Path, vocab_size: int, workers: int, quiet: bool) -> None:
    """Train REMI + BPE on the train split of CORPUS_DIR (built by 'composer corpus build').

    The vocabulary has a Style_<name> token for every style of the corpus and
    Style_any; meters come from the corpus. The result is one JSON file,
    DIR/tokenizer.json.
    """
    from composer.tokens.settings import TokenizerSettings
    from composer.tokens.training import train_tokenizer

    settings = TokenizerSettings(vocab_size=vocab_size)
    update, close = progress_bar("encoding", "piece") if not quiet else (None, lambda: None)
    try:
        result = train_tokenizer(corpus_dir, out_dir, settings, workers=workers, progress=update)
    finally:
        close()
    for entry in result.skipped:
        click.echo(f"skipped {entry['id']}: {entry['reason']}", err=True)
    tok = result.tokenizer
    notes = max(result.notes, 1)
    click.echo(
        f"{tok.vocab_size} ids ({len(tok.base_vocab)} base tokens, {len(tok.style_ids)} styles) "
        f"from {result.pieces} train pieces in {result.seconds:.0f} s; tokens per note "
        f"{result.base_tokens / notes:.2f} plain, {result.bpe_tokens / notes:.2f} with BPE "
        f"→ {result.path}"
    )


@click.command(epilog="""\b
Examples:
  composer tokenize data/corpus --tokenizer data/tokenizer -o data/tokens
  composer tokenize data/corpus --tokenizer data/tokenizer -o /tmp/t --no-augment --workers 2
""")
@click.argument("corpus_dir", type=click.Path(path_type=Path))
@click.option("--tokenizer", "tokenizer_dir", type=click.Path(path_type=Path), required=True,
              help="Folder (or tokenizer.json) written by 'composer tokenizer train'.")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Folder for <split>.bin, <split>.index.jsonl and meta.json.")
@click.option("--no-augment", is_flag=True,
              help="Do not add train pieces transposed by -6..+6 semitones.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 uses every core.")
@click.option("--no-cache", is_flag=True, help="Encode every piece again, ignoring earlier runs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def tokenize(corpus_dir: Path, tokenizer_dir: Path, out_dir: Path, no_augment: bool, workers: int,
             no_cache: bool, quiet: bool) -> None:
    """Write uint16 token shards of CORPUS_DIR per split, with an index and meta.json.

    Every sequence is Style_<style> ... EOS. Train pieces are also written
    transposed by every shift in -6..+6 that keeps their notes in range (one
    index row each). Re-runs encode only pieces that changed.
    """
    from composer.tokens.shards import DEFAULT_TRANSPOSITIONS, TokenizeConfig, tokenize_corpus

    config = TokenizeConfig(
        corpus_dir=corpus_dir,
        tokenizer=tokenizer_dir,
        out_dir=out_dir,
        transpositions=(0,) if no_augment else DEFAULT_TRANSPOSITIONS,
        workers=workers,
        use_cache=not no_cache,
    )
    update, close = progress_bar("tokenizing", "piece") if not quiet else (None, lambda: None)
    try:
        result = tokenize_corpus(config, progress=update)
    finally:
        close()
    for entry in result.skipped:
        click.echo(f"skipped {entry['id']}: {entry['reason']}", err=True)
    splits = result.meta["splits"]
    summary = ", ".join(f"{name} {row['pieces']} pieces / {row['sequences']} sequences / "
                        f"{row['tokens']:,} tokens" for name, row in splits.items())
    click.echo(f"{summary} ({result.reused} pieces reused from the cache, {len(result.skipped)} skipped) "
               f"in {result.seconds:.0f} s → {out_dir}")
