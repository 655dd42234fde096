"""An engine stand-in for timing the host side of the SQuAD pipeline on any machine.

It sleeps a fixed time per batch, as an engine keeps a GPU busy (time.sleep releases the GIL, so
the host pipeline keeps running meanwhile), and returns pseudo-random logits, computed in a few
vectorized steps so that the stand-in itself costs the host little. Each row's logits are a hash
of the row's real tokens and of the position, so they depend neither on the batch the row runs in
nor on the width (profile) it is padded to: any batching must give the same answers. Padding
positions get PADDING_LOGIT, as from a packed engine.
"""
import time

import numpy as np

from helpers.engine_runner import PADDING_LOGIT


class StandIn:
    """`start, end = StandIn(ms)(input_ids, segment_ids, input_mask)`; ms >= 0 per batch."""

    def __init__(self, ms):
        self.ms = ms

    def __call__(self, input_ids, segment_ids, input_mask):
        if self.ms:
            time.sleep(self.ms / 1000)
        mask = np.asarray(input_mask) != 0
        ids = np.asarray(input_ids).astype(np.int64)
        positions = np.arange(mask.shape[1])
        # An exact integer key per row (sums of integers do not depend on the padding after them).
        keys = (np.where(mask, (ids + 1) * (positions % 9973 + 1), 0).sum(axis=1) % 1_000_003).astype(np.float64)
        phase = keys[:, None] * 12.9898 + positions * 78.233
        start = (np.sin(phase) * 43758.5453) % 1.0
        end = (np.sin(phase + 1.618) * 43758.5453) % 1.0
        start = np.where(mask, (start - 0.5) * 8, PADDING_LOGIT).astype(np.float32)
        end = np.where(mask, (end - 0.5) * 8, PADDING_LOGIT).astype(np.float32)
        return start, end
