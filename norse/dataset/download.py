"""Verified downloads into a cache folder, shared by the data sets that fetch files.

A file is fetched from the first mirror (a base URL or a local folder) that serves it
with the expected digest (MD5 or SHA-256): it is streamed into a temporary file next to
its final place and renamed into place only when the digest matched. Archives are
unpacked the same way (gzip into a temporary file that is checked before the rename;
tar members only inside the target folder). A crash or a corrupt download never leaves
a partial file under the final name, and an intact file is never fetched again.
"""

import gzip
import hashlib
import http.client
import os
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterable, Union

PathLike = Union[str, os.PathLike]
_CHUNK = 1 << 20
_URL_SCHEMES = ("http", "https", "ftp", "file")

__all__ = [
    "digest_of",
    "download_file",
    "download_gzipped",
    "extract_tar",
    "gunzip_verified",
    "md5_of",
]


def digest_of(path: PathLike, algorithm: str = "md5") -> str:
    """The hex digest (``"md5"``, ``"sha256"``, ...) of the file at ``path``."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def md5_of(path: PathLike) -> str:
    """The MD5 hex digest of the file at ``path``."""
    return digest_of(path, "md5")


def _url(mirror: PathLike, name: str) -> str:
    text = os.fspath(mirror)
    if urllib.parse.urlsplit(text).scheme.lower() in _URL_SCHEMES:
        return text.rstrip("/") + "/" + urllib.parse.quote(name)
    return (Path(text).resolve() / name).as_uri()


def _stream_verified(
    source, destination: Path, expected: str, algorithm: str, what: str
) -> None:
    """Copies the binary stream ``source`` to ``destination`` via a temporary file,
    renaming it into place only if the content's digest is ``expected``."""
    handle, temporary = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".part"
    )
    try:
        digest = hashlib.new(algorithm, usedforsecurity=False)
        with os.fdopen(handle, "wb") as out:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected.lower():
            raise OSError(
                f"{algorithm.upper()} mismatch for {what}: got {digest.hexdigest()}, expected {expected.lower()}"
            )
        os.replace(temporary, destination)
    finally:
        Path(temporary).unlink(missing_ok=True)


def download_file(
    root: PathLike,
    name: str,
    digest: str,
    mirrors: Iterable[PathLike],
    timeout: float = 30.0,
    algorithm: str = "md5",
) -> Path:
    """``root/name``, downloaded from the first of ``mirrors`` (base URLs or local
    folders, tried in order) that serves it with ``digest``; kept if already there and
    intact, replaced if corrupt.

    Raises:
        RuntimeError: no mirror served the file with the right digest (the message
            lists every mirror's error).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.is_file() and digest_of(target, algorithm) == digest.lower():
        return target
    if isinstance(mirrors, (str, os.PathLike)):
        mirrors = [mirrors]  # one base, not an iterable of characters
    errors = []
    for mirror in mirrors:
        url = _url(mirror, name)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                _stream_verified(response, target, digest, algorithm, url)
            return target
        except (OSError, ValueError, http.client.HTTPException) as error:
            errors.append(f"  {url}: {error}")
    detail = "\n".join(errors) if errors else "  (no mirrors given)"
    raise RuntimeError(f"could not download {name}:\n{detail}")


def gunzip_verified(source: PathLike, destination: PathLike, md5: str) -> Path:
    """Unpacks the gzip file ``source`` to ``destination`` if its content has digest
    ``md5`` (else raises ``OSError`` and leaves ``destination`` untouched)."""
    destination = Path(destination)
    with gzip.open(source, "rb") as packed:
        _stream_verified(packed, destination, md5, "md5", f"the content of {source}")
    return destination


def download_gzipped(
    root: PathLike,
    name: str,
    md5: str,
    gz_md5: str,
    mirrors: Iterable[PathLike],
    timeout: float = 30.0,
    keep_archive: bool = False,
) -> Path:
    """``root/name`` (digest ``md5``), unpacked from ``name + ".gz"`` (digest
    ``gz_md5``) downloaded from ``mirrors``; nothing is fetched when ``root/name`` is
    already there and intact."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if target.is_file() and md5_of(target) == md5.lower():
        return target
    archive = download_file(root, name + ".gz", gz_md5, mirrors, timeout)
    gunzip_verified(archive, target, md5)
    if not keep_archive:
        archive.unlink()
    return target


def extract_tar(archive: PathLike, destination: PathLike) -> Path:
    """Extracts the (compressed) tar ``archive`` into ``destination``; members that
    would land outside it, links and device files are refused (tarfile's ``data``
    filter)."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination
