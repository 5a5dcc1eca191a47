"""Opening shards and indexes by URL: local paths, ``http(s)://`` and ``s3://`` through fsspec.

* Local files and S3 objects are read with seeks (S3: ranged GETs in blocks of ``S3_BLOCK_BYTES``),
  so a reader that starts mid-shard fetches nothing before its offset.
* HTTP(S) shards are streamed with one GET (no range support is assumed of the server); a reader
  that starts mid-shard reads and drops the bytes before its offset (nothing is decoded).
* ``s3://``: credentials and region come from the standard AWS environment variables
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``,
  ``AWS_PROFILE``) through botocore; the endpoint of an S3-compatible store from ``DATA.S3_ENDPOINT``,
  else ``AWS_ENDPOINT_URL``.

Every read goes through ``RetryingReader``: a failed open or read is retried ``retries`` times,
waiting ``backoff_s``, then twice as long each time, reopening at the byte where it stopped; then
``ShardFetchError`` names the URL and the last reason. ``check_readable`` is the start-up check:
wrong credentials, a missing bucket or object fail at once (``ShardFetchError``), before training.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

logger = logging.getLogger(__name__)

S3_BLOCK_BYTES = 8 << 20  # ranged GET size when reading from S3: few requests, bounded memory per reader
SKIP_CHUNK = 1 << 20  # bytes read at a time when a stream must be skipped forward
# what retrying cannot fix (ImportError: the protocol's library, s3fs for s3://, is not installed)
PERMANENT_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, ImportError)


class ShardFetchError(OSError):
    """A shard or index that could not be fetched; the message names the URL and the reason."""


@dataclass(frozen=True)
class Storage:
    """How shards are fetched: the S3 endpoint (``""``: ``AWS_ENDPOINT_URL`` or AWS itself), and the
    retries of a failed open or read with their first wait in seconds (doubling each time)."""

    s3_endpoint: str = ""
    retries: int = 5
    backoff_s: float = 1.0


def protocol_of(url: str) -> str:
    """``s3``, ``http``, ``https``, ``file`` (local paths) ..."""
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def filesystem(url: str, storage: Storage) -> tuple[Any, str]:
    """The fsspec filesystem serving ``url`` and the path within it: a new instance, so the
    credentials in the environment now are the ones used (fsspec would reuse an earlier one)."""
    from fsspec.core import url_to_fs

    options: dict[str, Any] = {"skip_instance_cache": True}
    if protocol_of(url) == "s3":
        endpoint = storage.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL", "")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    return url_to_fs(url, **options)


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def open_at(url: str, storage: Storage, offset: int = 0) -> BinaryIO:
    """``url`` opened for reading at byte ``offset`` (no retries: see ``RetryingReader``)."""
    fs, path = filesystem(url, storage)
    proto = protocol_of(url)
    if proto in ("http", "https"):
        f = fs.open(path, "rb", block_size=0)  # one streamed GET
        _discard(f, offset)
        return f
    kwargs = {"block_size": S3_BLOCK_BYTES, "cache_type": "readahead"} if proto == "s3" else {}
    f = fs.open(path, "rb", **kwargs)
    if offset:
        f.seek(offset)
    return f


def _discard(f: BinaryIO, size: int) -> None:
    """Read and drop ``size`` bytes of a stream that cannot seek."""
    while size > 0:
        chunk = f.read(min(size, SKIP_CHUNK))
        if not chunk:
            raise EOFError(f"the stream ended {size} bytes before the offset asked for")
        size -= len(chunk)


class RetryingReader:
    """A read-only binary stream over ``url`` from byte ``offset`` that reopens where it stopped
    after a failure (``Storage.retries`` times, backing off), then raises ``ShardFetchError``."""

    def __init__(self, url: str, storage: Storage, offset: int = 0,
                 opener: Callable[[str, Storage, int], BinaryIO] = open_at, sleep: Callable[[float], None] = time.sleep):
        self.url, self.storage, self.pos = url, storage, offset
        self._opener, self._sleep = opener, sleep
        self._file: BinaryIO | None = None

    def _retrying(self, action: Callable[[], Any]) -> Any:
        waited = 0.0
        for attempt in range(self.storage.retries + 1):
            try:
                if self._file is None:
                    self._file = self._opener(self.url, self.storage, self.pos)
                return action()
            except Exception as err:  # network, server and storage errors of every library underneath
                self.close()
                if attempt == self.storage.retries:
                    raise ShardFetchError(f"{self.url}: cannot be fetched ({_describe(err)}; gave up after "
                                          f"{attempt + 1} attempts over {waited:.0f} s)") from err
                wait = self.storage.backoff_s * 2 ** attempt
                logger.warning("%s: %s at byte %d; retrying in %.1f s (%d/%d)", self.url, _describe(err), self.pos,
                               wait, attempt + 1, self.storage.retries)
                self._sleep(wait)
                waited += wait
        raise AssertionError("unreachable")

    def read(self, size: int = -1) -> bytes:
        data = self._retrying(lambda: self._file.read(size))
        self.pos += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:  # a broken connection may fail to close; it is dropped either way
                pass
            self._file = None

    def __enter__(self) -> "RetryingReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return self.url


def read_bytes(url: str, storage: Storage) -> bytes:
    """The whole of ``url`` (an index), with retries."""
    with RetryingReader(url, storage) as r:
        chunks = []
        while True:
            chunk = r.read(SKIP_CHUNK)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def check_readable(url: str, storage: Storage) -> int:
    """The size of ``url`` from its metadata (a HEAD request on HTTP and S3): the start-up check.

    Raises:
        ShardFetchError: it does not exist, access is denied (wrong credentials, a missing
            bucket), or the store cannot be reached after the retries; the message says which.
    """
    for attempt in range(storage.retries + 1):
        try:
            fs, path = filesystem(url, storage)
            return int(fs.info(path).get("size") or 0)
        except PERMANENT_ERRORS as err:
            hint = (" (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, the bucket name and "
                    "DATA.S3_ENDPOINT or AWS_ENDPOINT_URL)" if protocol_of(url) == "s3" else "")
            if isinstance(err, ImportError):
                hint = " (pip install 'sfvideo[s3]' for s3://)" if protocol_of(url) == "s3" else ""
            raise ShardFetchError(f"{url}: cannot be read: {_describe(err)}{hint}") from None
        except Exception as err:
            if attempt == storage.retries:
                raise ShardFetchError(f"{url}: cannot be reached ({_describe(err)}) after {attempt + 1} attempts") \
                    from None
            time.sleep(storage.backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")
