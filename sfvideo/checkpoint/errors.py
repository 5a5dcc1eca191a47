"""The error every checkpoint function raises for a file or weights it cannot use."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, truncated, unsafe, or of the wrong shape."""
