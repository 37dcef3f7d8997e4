"""Corpus → token shards (the tokenizer itself is trained in ``training``).

``tokenize_corpus`` writes, per split, ``<split>.bin`` (uint16 ids of every sequence,
concatenated), ``<split>.index.jsonl`` (one row per sequence), ``meta.json`` and a copy of
the ``tokenizer.json`` they were made with::

    meta.json   {"vocab_size", "pad_id", "bos_id": null, "eos_id", "style_ids": {style: id},
                 "prefix_len", "any_key_id",
                 "tokenizer_sha256", "corpus_manifest_sha256", "shard_version",
                 "splits": {split: {"pieces", "sequences", "tokens"}},
                 "augmentation": {"transpositions": [...], "mode": "precomputed"}}
    index row   {"id", "style", "offset", "length", "transpose"}   (offset/length in ids)

Every sequence is ``Style_<style> Key_<key> ... EOS`` (no key token in format 1
tokenizers; ``meta.json``'s ``prefix_len`` says how many tokens precede the music). Key
augmentation is precomputed: each train piece also appears transposed by every amount in
``transpositions`` that keeps its notes inside the pitch range (one index row each), its
key token moved with it; val and test are not transposed.
``meta.json`` records what made the shards (``shard_source``: the tokenizer's and the
corpus manifest's sha256, the transpositions and the shard format), and
``shards_stale_reason`` compares that with a corpus and tokenizer, so a caller that
reuses shards never trains on a corpus or tokenizer that has since changed.
Work is cached per piece (by MIDI hash, tokenizer hash and transpositions) under
``TOKENS_DIR/.cache``, so a re-run only encodes what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from composer.corpus.build import read_manifest
from composer.corpus.split import SPLITS
from composer.errors import ComposerError, ConfigError, CorpusError
from composer.io.digest import sha256_file
from composer.io.outputs import prepare_out_dir, write_atomic
from composer.music.keys import key_from_name, transpose_key
from composer.tokens.pieces import NOT_MADE, WORKER, manifest_sha256, pool_map, read_midi, read_score
from composer.tokens.tokenizer import TOKENIZER_FILE, Tokenizer, load_tokenizer, tokenizer_path

log = logging.getLogger(__name__)

META = "meta.json"
CACHE_DIR = ".cache"
SHARD_VERSION = 2  # bump when shard contents change, to invalidate caches
DEFAULT_TRANSPOSITIONS = tuple(range(-6, 7))
SOURCE_KEYS = ("tokenizer_sha256", "corpus_manifest_sha256", "shard_version")  # meta.json: what made them

Progress = Callable[[int, int], None]  # (pieces done, pieces total)


def _init_trained(path: str) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    WORKER["tokenizer"] = load_tokenizer(Path(path))


# ---- shards ------------------------------------------------------------------------------

@dataclass
class TokenizeConfig:
    corpus_dir: Path  # a built corpus (manifest.jsonl + midi/)
    tokenizer: Path  # folder (or file) of a trained tokenizer.json
    out_dir: Path  # TOKENS_DIR: shards, index, meta.json
    transpositions: tuple[int, ...] = DEFAULT_TRANSPOSITIONS  # train split only; (0,) = none
    workers: int = 0  # processes; 0 means one per core
    use_cache: bool = True  # reuse earlier runs' work for unchanged pieces


@dataclass
class TokenizeResult:
    meta: dict[str, Any]  # what meta.json holds
    skipped: list[dict[str, str]]  # {"id", "style", "reason"} of pieces left out
    reused: int  # pieces taken from the cache (an earlier run, or an identical piece in this one)
    seconds: float


@dataclass(frozen=True)
class _PieceJob:
    midi: str  # path of the MIDI file
    style: str
    transpositions: tuple[int, ...]
    cache: str | None  # cache file to read or write, None for no cache
    sha256: str | None = None  # the file's hash in the manifest
    key: str | None = None  # the manifest's key estimate, "D major"


def _cache_key(tok: Tokenizer, record: dict[str, Any], transpositions: tuple[int, ...]) -> str:
    text = (f"{SHARD_VERSION}:{tok.sha256}:{record.get('sha256')}:{record['style']}:{transpositions}"
            f":{record.get('key')}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _piece_job(job: _PieceJob) -> tuple[list[tuple[int, np.ndarray]], str | None, bool]:
    """([(transpose, ids)], None, from_cache) or ([], reason, False)."""
    tok: Tokenizer = WORKER["tokenizer"]
    try:
        data = read_midi(Path(job.midi), job.sha256)
    except ComposerError as exc:
        return [], f"{exc}", False
    if job.cache and os.path.exists(job.cache):
        try:
            with np.load(job.cache) as cached:
                ids, shifts, lengths = cached["ids"], cached["transpose"], cached["lengths"]
            parts = np.split(ids, np.cumsum(lengths)[:-1])
            return list(zip(shifts.tolist(), parts, strict=True)), None, True
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache entry is recomputed
    try:
        base = tok.encode_base(read_score(Path(job.midi), data))
    except ComposerError as exc:
        return [], f"{exc}" if str(job.midi) in str(exc) else f"{Path(job.midi).name}: {exc}", False
    shifted = [(k, tok.transpose_base(base, k)) for k in job.transpositions]
    kept = [(k, b) for k, b in shifted if b is not None]
    key = key_from_name(job.key)
    tail = np.array([tok.eos_id])

    def head(shift: int) -> np.ndarray:
        return np.array(tok.prefix(job.style, None if key is None else transpose_key(key, shift)))

    out = [(k, np.concatenate([head(k), ids, tail]).astype(np.uint16))
           for (k, _), ids in zip(kept, tok.bpe_many([b for _, b in kept]), strict=True)]
    if job.cache:
        _save_cache(Path(job.cache), out)
    return out, None, False


def _save_cache(path: Path, parts: list[tuple[int, np.ndarray]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as handle:
            np.savez(handle, ids=np.concatenate([p for _, p in parts]) if parts else np.empty(0, np.uint16),
                     transpose=np.array([k for k, _ in parts], dtype=np.int16),
                     lengths=np.array([len(p) for _, p in parts], dtype=np.int64))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # the cache is an optimisation; never fatal


class _ShardWriter:
    """Appends sequences to ``<split>.bin`` and rows to ``<split>.index.jsonl``, atomically."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.handles = {s: (out_dir / f"{s}.bin.tmp").open("wb") for s in SPLITS}
        self.rows: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
        self.tokens = dict.fromkeys(SPLITS, 0)
        self.pieces = dict.fromkeys(SPLITS, 0)

    def add(self, split: str, piece_id: str, style: str, parts: list[tuple[int, np.ndarray]]) -> None:
        self.pieces[split] += 1
        for shift, ids in parts:
            self.handles[split].write(ids.astype("<u2").tobytes())
            self.rows[split].append({"id": piece_id, "style": style, "offset": self.tokens[split],
                                     "length": len(ids), "transpose": int(shift)})
            self.tokens[split] += len(ids)

    def commit(self, meta: dict[str, Any]) -> None:
        for split in SPLITS:
            handle = self.handles[split]
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            index_tmp = self.out_dir / f"{split}.index.jsonl.tmp"
            with index_tmp.open("w", encoding="utf-8") as out:
                out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows[split])
        (self.out_dir / META).unlink(missing_ok=True)  # shards and meta must never disagree
        for split in SPLITS:
            os.replace(self.out_dir / f"{split}.bin.tmp", self.out_dir / f"{split}.bin")
            os.replace(self.out_dir / f"{split}.index.jsonl.tmp", self.out_dir / f"{split}.index.jsonl")
        meta_tmp = self.out_dir / f"{META}.tmp"
        meta_tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(meta_tmp, self.out_dir / META)

    def abort(self) -> None:
        for split, handle in self.handles.items():
            handle.close()
            (self.out_dir / f"{split}.bin.tmp").unlink(missing_ok=True)


def tokenize_corpus(config: TokenizeConfig, progress: Progress | None = None) -> TokenizeResult:
    """Write the token shards, index and meta.json of a corpus (see the module docstring)."""
    started = time.monotonic()
    tok = load_tokenizer(config.tokenizer)
    if 0 not in config.transpositions:
        raise ConfigError(f"transpositions {list(config.transpositions)} must include 0")
    corpus_hash = manifest_sha256(config.corpus_dir)  # before reading it: a rebuild meanwhile reads as stale
    records = [r for r in read_manifest(config.corpus_dir) if r.get("split") in SPLITS]
    if not records:
        raise CorpusError(f"{config.corpus_dir}: the manifest lists no pieces in {', '.join(SPLITS)}")
    unknown = sorted({r["style"] for r in records} - set(tok.styles))
    if unknown:
        raise ConfigError(f"styles {', '.join(unknown)} are not in the tokenizer "
                          f"({', '.join(tok.styles)}); train it on this corpus")
    prepare_out_dir(config.out_dir)
    cache_dir = config.out_dir / CACHE_DIR
    transpositions = tuple(sorted(set(config.transpositions)))
    jobs, keys = [], []
    for r in records:
        shifts = transpositions if r["split"] == "train" else (0,)
        key = _cache_key(tok, r, shifts)
        keys.append(key)
        cache = cache_dir / key[:2] / f"{key}.npz"
        if not config.use_cache:
            cache.unlink(missing_ok=True)
        sha = r.get("sha256") if isinstance(r.get("sha256"), str) else None
        key = r.get("key") if isinstance(r.get("key"), str) else None
        jobs.append(_PieceJob(str(config.corpus_dir / r["midi"]), r["style"], shifts, str(cache), sha, key))
    writer = _ShardWriter(config.out_dir)
    skipped: list[dict[str, str]] = []
    reused = 0
    workers = config.workers or os.cpu_count() or 1
    try:
        results = pool_map(_piece_job, jobs, workers, _init_trained, (str(config.tokenizer),))
        for done, (record, (parts, reason, cached)) in enumerate(zip(records, results, strict=True), 1):
            if reason is not None:
                skipped.append({"id": record["id"], "style": record["style"], "reason": reason})
            else:
                writer.add(record["split"], record["id"], record["style"], parts)
                reused += cached
            if progress:
                progress(done, len(jobs))
        if len(skipped) == len(records):
            raise CorpusError(f"{config.corpus_dir}: none of the {len(records)} pieces could be "
                              f"tokenized (first: {skipped[0]['reason']})")
        meta = {
            "vocab_size": tok.vocab_size,
            "pad_id": tok.pad_id,
            "bos_id": None,
            "eos_id": tok.eos_id,
            "style_ids": tok.style_ids,
            "prefix_len": tok.prefix_len,
            "any_key_id": tok.any_key_id,
            "tokenizer_sha256": tok.sha256,
            "corpus_manifest_sha256": corpus_hash,
            "shard_version": SHARD_VERSION,
            "splits": {s: {"pieces": writer.pieces[s], "sequences": len(writer.rows[s]),
                           "tokens": writer.tokens[s]} for s in SPLITS},
            "augmentation": {"transpositions": list(transpositions), "mode": "precomputed"},
        }
        source = tokenizer_path(Path(config.tokenizer))
        if source.resolve() != (config.out_dir / TOKENIZER_FILE).resolve():
            # the shards carry their tokenizer: a training run copies it, and its bundle ships it
            write_atomic(config.out_dir / TOKENIZER_FILE, source.read_bytes())
        writer.commit(meta)
    except BaseException:
        writer.abort()
        raise
    _prune_cache(cache_dir, set(keys))
    for entry in skipped:
        log.info("skipped %s: %s", entry["id"], entry["reason"])  # the result lists them too
    return TokenizeResult(meta=meta, skipped=skipped, reused=reused,
                          seconds=time.monotonic() - started)


def _prune_cache(cache_dir: Path, keep: set[str]) -> None:
    """Drop cache entries no piece of this run uses (old tokenizers, removed pieces)."""
    if not cache_dir.is_dir():
        return
    for path in cache_dir.glob("*/*.npz"):
        if path.stem not in keep:
            path.unlink(missing_ok=True)


def read_meta(tokens_dir: Path) -> dict[str, Any]:
    """``meta.json`` of a tokens folder; a ``CorpusError`` when it is missing or damaged."""
    path = tokens_dir / META
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError(f"{tokens_dir}: no {META}; run 'composer tokenize CORPUS_DIR "
                          f"--tokenizer DIR -o {tokens_dir}'") from None
    except json.JSONDecodeError:
        raise CorpusError(f"{path}: damaged; run 'composer tokenize' again") from None


def shard_source(meta: dict[str, Any]) -> dict[str, Any]:
    """What made a set of shards, from its meta.json: tokenizer, corpus, format, transpositions.

    Two shard sets with equal sources hold the same sequences; a training run records
    its shards' meta, so this also tells whether a run was trained on these shards.
    """
    source = {key: meta.get(key) for key in SOURCE_KEYS}
    augmentation = meta.get("augmentation")
    shifts = augmentation.get("transpositions") if isinstance(augmentation, dict) else None
    source["transpositions"] = sorted(shifts) if isinstance(shifts, list) else None
    return source


def shards_stale_reason(tokens_dir: Path, corpus_dir: Path, tokenizer: Path,
                        transpositions: tuple[int, ...] = DEFAULT_TRANSPOSITIONS) -> str | None:
    """Why the shards in ``tokens_dir`` are not what ``tokenize_corpus`` would write now for
    this corpus, tokenizer (folder or file) and transpositions, in a few words; ``None`` when
    they are. Only recorded hashes are compared, so this takes a moment, not a re-encode."""
    try:
        meta = json.loads((tokens_dir / META).read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(META)
    except FileNotFoundError:
        return NOT_MADE
    except (OSError, ValueError):
        return f"its {META} is damaged"
    if any(not (tokens_dir / f"{split}{suffix}").is_file() for split in SPLITS
           for suffix in (".bin", ".index.jsonl")):
        return "some shard files are missing"
    had = shard_source(meta)
    file = tokenizer_path(tokenizer)
    if not file.is_file():
        return f"no tokenizer at {tokenizer}"
    if had["tokenizer_sha256"] != sha256_file(file):
        return "they were made with another tokenizer"
    if had["corpus_manifest_sha256"] is None:
        return "they do not record which corpus they were made from"
    if had["corpus_manifest_sha256"] != manifest_sha256(corpus_dir):
        return "the corpus changed since they were made"
    if had["transpositions"] != sorted(set(transpositions)):
        return "they were made with other transpositions"
    if had["shard_version"] != SHARD_VERSION:
        return "they were made by another version of composer"
    return None


def read_split(tokens_dir: Path, split: str) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(ids memmap (N,) uint16, index rows) of one split."""
    if split not in SPLITS:
        raise ConfigError(f"split '{split}': use one of {', '.join(SPLITS)}")
    read_meta(tokens_dir)
    bin_path = tokens_dir / f"{split}.bin"
    ids = (np.memmap(bin_path, dtype="<u2", mode="r") if bin_path.stat().st_size
           else np.empty(0, dtype="<u2"))
    with (tokens_dir / f"{split}.index.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return ids, rows
