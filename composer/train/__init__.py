"""Training: token shards → batches → a run folder of checkpoints and metrics.

``batches`` draws training windows from memory-mapped shards as a pure function of
(seed, step); ``loop`` holds ``TrainConfig``, the optimisation loop, validation, exact
resume and DDP under torchrun.
"""
