"""Writing output files that other programs read (Grafana, Prometheus) safely."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imagetrail.errors import ConfigError


def write_atomically(path: Path, text: str, *, hint: str | None = None) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path``.

    A reader (Grafana's file provisioning, Prometheus reloading rules) never sees half a
    file, and a failed write leaves the old file and no temporary one. The file is made
    world-readable (0644): mkstemp's 0600 would hide it from a server running as another user.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}", hint=hint) from exc
