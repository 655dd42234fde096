"""An engine stand-in for timing the host side of the SQuAD pipeline on any machine.

It sleeps a fixed time per batch, as an engine keeps a GPU busy (time.sleep releases the GIL, so
the host pipeline keeps running meanwhile), and returns random logits. Each row's logits come
from a generator seeded by the row's real tokens, so they depend neither on the batch the row
runs in nor on the width (profile) it is padded to: any batching must give the same answers.
Padding positions get PADDING_LOGIT, as from a packed engine.
"""
import time
import zlib

import numpy as np

from helpers.engine_runner import PADDING_LOGIT


class StandIn:
    """`start, end = StandIn(ms)(input_ids, segment_ids, input_mask)`; ms >= 0 per batch."""

    def __init__(self, ms):
        self.ms = ms

    def __call__(self, input_ids, segment_ids, input_mask):
        if self.ms:
            time.sleep(self.ms / 1000)
        start = np.full(input_ids.shape, PADDING_LOGIT, np.float32)
        end = np.full(input_ids.shape, PADDING_LOGIT, np.float32)
        for row, length in enumerate(np.asarray(input_mask).sum(axis=1)):
            tokens = np.ascontiguousarray(input_ids[row, :length], np.int32)
            rng = np.random.default_rng(zlib.crc32(tokens.tobytes()))
            start[row, :length], end[row, :length] = rng.standard_normal((2, length), np.float32)
        return start, end
