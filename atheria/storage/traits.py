"""What differs between storage backends, in one table keyed by fsspec protocol: the code that writes or logs asks
for a backend's traits instead of testing protocol names or filesystem classes, so adding a remote backend is one
row here (and its fsspec package)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import fsspec
from fsspec.core import split_protocol


@dataclass(frozen=True)
class Traits:
    """How one backend behaves where Atheria's writes and logs must care.

    local: a path on this machine (a Drive mount included), not remote; a write fsyncs a temp sibling and
        os.replace-s it into place, then fsyncs the folder.
    atomic_upload: an upload appears under its name only once complete (object stores), so it is sent straight to its
        name, without the temp + mv (a slow server-side copy there).
    loggers: its libraries' loggers, whose retries and tracebacks go to the debug log, never to the console.
    """

    local: bool = False
    atomic_upload: bool = False
    loggers: tuple[str, ...] = ()


DEFAULT = Traits()  # any other fsspec backend: upload to a temp sibling, then mv it into place
_LOCAL = Traits(local=True)
_GCS = Traits(atomic_upload=True, loggers=("gcsfs", "google"))
_S3 = Traits(atomic_upload=True, loggers=("s3fs",))
_AZURE = Traits(loggers=("adlfs",))

TRAITS: dict[Optional[str], Traits] = {
    None: _LOCAL, "file": _LOCAL, "local": _LOCAL,  # None: a plain path
    "gs": _GCS, "gcs": _GCS,
    "s3": _S3, "s3a": _S3,
    "az": _AZURE, "abfs": _AZURE, "abfss": _AZURE,
}
# fsspec itself and the async HTTP stack the remote backends share
_SHARED_LOGGERS = ("fsspec", "aiohttp", "asyncio", "urllib3")
# every storage library's logger: kept off the console whichever backend a run uses (debug_log)
QUIET = tuple(dict.fromkeys(_SHARED_LOGGERS + tuple(name for t in TRAITS.values() for name in t.loggers)))


def of_url(url: str) -> Traits:
    """The traits of a local path or fsspec URL's backend (a chained URL's outermost protocol)."""
    return TRAITS.get(split_protocol(str(url))[0], DEFAULT)


def of_fs(fs: fsspec.AbstractFileSystem) -> Traits:
    """The traits of a filesystem instance, by the first of its protocol names that the table knows."""
    names = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return next((TRAITS[name] for name in names if name in TRAITS), DEFAULT)
