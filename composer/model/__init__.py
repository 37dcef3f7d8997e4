"""The model: a small GPT-style decoder and the files it lives in.

``config`` holds ``ModelConfig`` (no torch), ``transformer`` the network and its
``KVCache`` (torch);
``checkpoint`` writes atomic, checksummed, resumable training checkpoints; ``bundle``
exports and loads verified model bundles (safetensors, JSON config, tokenizer, card).
"""
