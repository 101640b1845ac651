"""Finding dataset files on disk and downloading them with a checksum.

Every file-based dataset looks in the same folders, in order:

1. ``data_dir`` (``--data-dir``), if given;
2. ``$OLMP_DATA``, if set;
3. ``~/.cache/olmp``;
4. folders a system package installs (given per dataset).

Downloads go to the first folder of that list and are moved into place only once their
checksum is verified, so an interrupted or corrupted download never looks like data.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from http.client import HTTPException
from pathlib import Path

from olmp.errors import OlmpError
from olmp.files import atomic_path


def search_roots(data_dir: Path | None, system_roots: Iterable[Path] = ()) -> list[Path]:
    """Folders searched for dataset files, in order (see the module docstring)."""
    roots: list[Path] = []
    if data_dir is not None:
        roots.append(Path(data_dir))
    if os.environ.get("OLMP_DATA"):
        roots.append(Path(os.environ["OLMP_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "olmp")
    roots.extend(system_roots)
    return roots


def data_dir_hint(what: str, data_dir: Path | None = None) -> str:
    """How to point olmp at local copies of ``what``: the advice of every "not found",
    which names a ``data_dir`` given that is no folder (a typo, most likely)."""
    if data_dir is not None and not Path(data_dir).is_dir():
        return f"--data-dir {data_dir} is not a folder; give the folder that holds {what}"
    given = "give --data-dir" if data_dir is not None else "pass --data-dir"
    return f"{given} (or set OLMP_DATA) to the folder that holds {what}"


def md5_of(path: Path) -> str:
    """Hex MD5 digest of a file, read in chunks."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    urls: Iterable[str],
    target: Path,
    md5: str | None,
    timeout: float = 30.0,
    convert: Callable[[bytes], bytes] | None = None,
) -> Path:
    """Fetch ``target`` from the first of ``urls`` that answers with the right content.

    ``md5`` is the published checksum (of the file after ``convert``, which may turn the
    upstream bytes into the local copy); ``None`` only for files whose publisher gives
    none (the caller then checks the content's structure itself). Folders made for it go
    again when every URL fails.
    """
    made = [f for f in (target.parent, *target.parent.parents) if not f.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a data folder that is a file, say
        raise OlmpError(f"cannot make {target.parent} ({exc.strerror})") from None
    errors = []
    for url in urls:
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    body = response.read()
                tmp.write_bytes(body if convert is None else convert(body))
                actual = md5_of(tmp)
                if md5 is not None and actual != md5:
                    raise OlmpError(f"checksum mismatch: md5 {actual}, expected {md5}")
            return target
        # A dropped connection (http.client's), a body that is not the file (convert's).
        except (urllib.error.URLError, HTTPException, OSError, ValueError, OlmpError) as exc:
            errors.append(f"{url}: {exc}")
    for folder in made:  # the folders made for it, innermost first, if still empty
        if not any(folder.iterdir()):
            folder.rmdir()
    raise OlmpError(f"could not download {target.name}: {'; '.join(errors)}")
