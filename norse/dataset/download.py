"""Verified, cached downloads for the data sets, through `pooch <https://www.fatiando.org/pooch>`_.

:func:`fetch` asks each mirror in turn (a base URL or a local folder) for a file with a
known digest (``"md5:..."`` or ``"sha256:..."``) and returns it from the cache folder
``root``. Pooch streams the download into a temporary file next to its final place and
renames it into place only when the digest matches, so a crash or a corrupt download
never leaves a partial file under the final name; an intact file in ``root`` is used as
it is, a corrupt one is fetched again. Archives are unpacked by pooch's processors
(``pooch.Untar``, ``pooch.Unzip``) passed through ``processor``.

pooch (and tonic, for the event data sets) come with the ``data`` extra:
``pip install "norse[data]"``. ``norse.dataset`` imports without them; a loader that
needs one raises an ``ImportError`` that names the extra.
"""

import importlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Optional, Union

PathLike = Union[str, os.PathLike]
_URL_SCHEMES = ("http", "https", "ftp", "file")

__all__ = ["fetch"]


def _import_extra(module: str, needed_for: str) -> ModuleType:
    """``module``, imported on first use: pooch and tonic are optional (the ``data``
    extra), so a missing one is an ``ImportError`` that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{needed_for} needs the package {module.split('.')[0]!r}, which is not "
            f'installed: pip install "norse[data]"'
        ) from error


def _copy_local(url: str, output_file: Any, pooch: Any = None) -> None:
    """A pooch downloader for ``file://`` URLs (pooch itself speaks HTTP, FTP, SFTP
    and DOI): local folders and mirrors on a shared disk."""
    source = urllib.request.url2pathname(urllib.parse.urlsplit(url).path)
    if isinstance(output_file, (str, os.PathLike)):
        shutil.copyfile(source, output_file)
    else:
        with open(source, "rb") as handle:
            shutil.copyfileobj(handle, output_file)


def _source(mirror: PathLike, name: str, timeout: float, progress: bool):
    """The URL of ``name`` on ``mirror`` and the pooch downloader that fetches it."""
    text = os.fspath(mirror)
    scheme = urllib.parse.urlsplit(text).scheme.lower()
    if scheme not in _URL_SCHEMES:  # a local folder
        return (Path(text).expanduser().resolve() / name).as_uri(), _copy_local
    url = text.rstrip("/") + "/" + urllib.parse.quote(name)
    if scheme == "file":
        return url, _copy_local
    pooch = _import_extra("pooch", "downloading data sets")
    kind = pooch.FTPDownloader if scheme == "ftp" else pooch.HTTPDownloader
    return url, kind(progressbar=progress, timeout=timeout)


def fetch(
    root: PathLike,
    name: str,
    known_hash: str,
    mirrors: Union[PathLike, Iterable[PathLike]],
    *,
    timeout: float = 30.0,
    processor: Optional[Callable[[str, str, Any], Any]] = None,
    progress: bool = False,
) -> Path:
    """``root/name``, fetched through pooch from the first of ``mirrors`` that serves it
    with the digest ``known_hash``; nothing is fetched when the file in ``root`` is
    already intact.

    Parameters:
        root: the cache folder (created if missing)
        name: the file name, appended to each mirror
        known_hash: ``"md5:<hex>"`` or ``"sha256:<hex>"``
        mirrors: base URLs (``https://``, ``http://``, ``ftp://``, ``file://``) or local
            folders, tried in order; a single one may be given as it is
        timeout: seconds a network request may wait for the server
        processor: a pooch processor (e.g. ``pooch.Untar(extract_dir=...)``), run on
            the file after the download (or on the cached file)
        progress: show a progress bar of the download (tqdm) on stderr

    Returns:
        The path of the file in ``root`` (what ``processor`` returns is not kept).

    Raises:
        RuntimeError: no mirror served the file with the right digest; the message lists
            every mirror's error (a digest mismatch, a missing file, an unreachable
            network).
        ImportError: pooch is not installed.
    """
    pooch = _import_extra("pooch", "downloading data sets")
    requests = _import_extra("requests", "downloading data sets")
    root = Path(os.path.expanduser(os.fspath(root)))
    if isinstance(mirrors, (str, os.PathLike)):
        mirrors = [mirrors]  # one base, not an iterable of characters
    errors = []
    for mirror in mirrors:
        url, downloader = _source(mirror, name, timeout, progress)
        try:
            pooch.retrieve(
                url,
                known_hash,
                fname=name,
                path=root,
                processor=processor,
                downloader=downloader,
            )
            return root / name
        except (OSError, ValueError, requests.exceptions.RequestException) as error:
            errors.append(f"  {url}: {error}")
    detail = "\n".join(errors) if errors else "  (no mirrors given)"
    raise RuntimeError(
        f"could not download {name} into {root} (is the network reachable? A copy "
        f"with the digest {known_hash} may also be put there by hand):\n{detail}"
    )
