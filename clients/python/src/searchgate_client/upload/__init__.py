"""Uploading catalog files: ``searchgate-upload`` and the job behind it.

from pathlib import Path
from searchgate_client import CachedKey, from_vault
from searchgate_client.upload import Options, Upload

key = CachedKey(from_vault("secret/searchgate/client-key"))
report = Upload(Options(Path("catalog.ndjson"), "shop", "https://search.example", key)).run()
"""

from searchgate_client.upload.formats import FileFormatError, Item, Position, Refused, read_records
from searchgate_client.upload.job import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    Options,
    Report,
    Upload,
    UploadFailed,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "FileFormatError",
    "Item",
    "Options",
    "Position",
    "Refused",
    "Report",
    "Upload",
    "UploadFailed",
    "read_records",
]
