"""Seeds derived from tuples of integers: the one derivation every seeded stream of sfvideo uses."""

from __future__ import annotations

import numpy as np


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from a tuple of integers (different tuples give unrelated streams)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])
