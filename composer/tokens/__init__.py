"""Tokens: the only room that imports miditok.

``settings`` lays out the REMI vocabulary (style tokens, meters, the miditok config),
``tokenizer`` wraps miditok REMI + BPE with style tokens (encode, decode, save, load),
``bpe`` holds BPE itself (training, the entry table, the cached bar-word encoder: all
that touches miditok's private attributes), ``grammar`` turns the vocabulary into a
state table used to mask logits, ``training`` trains tokenizers on a corpus, ``shards``
writes the uint16 token shards of a corpus (``pieces`` holds what both share: checked
reads and a process pool), and ``roundtrip`` checks that encoding then decoding keeps
the notes.
"""
