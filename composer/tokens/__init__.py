"""Tokens: the only room that imports miditok.

``tokenizer`` wraps miditok REMI + BPE with style tokens (encode, decode, save, load),
``grammar`` turns its vocabulary into a state table used to mask logits, ``shards``
trains tokenizers and writes the uint16 token shards of a corpus, and ``roundtrip``
checks that encoding then decoding keeps the notes.
"""
