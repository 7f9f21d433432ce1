"""norse.dataset.download.fetch (pooch underneath) and the optional extras.

No test touches the network: files come from local folders, ``file://`` URLs and a web
server on this machine.
"""

import functools
import http.server
import subprocess
import sys
import threading
import zipfile

import pytest

from norse.dataset.download import fetch

pooch = pytest.importorskip("pooch")


@pytest.fixture
def mirror(tmp_path):
    """A folder with a small file and a zip archive; returns it and their MD5s."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "numbers.txt").write_text("1 2 3\n")
    with zipfile.ZipFile(folder / "pack.zip", "w") as archive:
        archive.writestr("inner/data.txt", "inside\n")
    digests = {
        name: "md5:" + pooch.file_hash(str(folder / name), alg="md5")
        for name in ("numbers.txt", "pack.zip")
    }
    return folder, digests


def test_local_folder_and_file_url_mirrors(tmp_path, mirror):
    folder, digests = mirror
    path = fetch(tmp_path / "a", "numbers.txt", digests["numbers.txt"], folder)
    assert path == tmp_path / "a" / "numbers.txt" and path.read_text() == "1 2 3\n"
    url = folder.as_uri() + "/"
    path = fetch(tmp_path / "b", "numbers.txt", digests["numbers.txt"], [url])
    assert path.read_text() == "1 2 3\n"
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["numbers.txt"]


def test_a_pooch_processor_unpacks_the_archive(tmp_path, mirror):
    folder, digests = mirror
    unzip = pooch.Unzip(extract_dir=str(tmp_path / "cache" / "unpacked"))
    path = fetch(
        tmp_path / "cache", "pack.zip", digests["pack.zip"], [folder], processor=unzip
    )
    assert path.name == "pack.zip"
    assert (tmp_path / "cache/unpacked/inner/data.txt").read_text() == "inside\n"


def test_a_wrong_digest_names_file_mirror_and_digests(tmp_path, mirror):
    folder, _ = mirror
    with pytest.raises(RuntimeError) as info:
        fetch(tmp_path / "c", "numbers.txt", "md5:" + "0" * 32, [folder])
    message = str(info.value)
    assert "could not download numbers.txt" in message
    assert "MD5 hash of downloaded file" in message and "0" * 32 in message
    assert (folder / "numbers.txt").as_uri() in message
    assert list((tmp_path / "c").iterdir()) == []  # nothing under the final name


def test_sha256_digests_and_a_kept_intact_copy(tmp_path, mirror):
    folder, _ = mirror
    sha = "sha256:" + pooch.file_hash(str(folder / "numbers.txt"))
    fetch(tmp_path / "d", "numbers.txt", sha, folder)
    (folder / "numbers.txt").unlink()  # the cached copy is enough from now on
    assert fetch(tmp_path / "d", "numbers.txt", sha, folder).read_text() == "1 2 3\n"


@pytest.fixture
def web_server(mirror):
    folder, _ = mirror
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(folder)
    )
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_with_a_progress_bar(tmp_path, mirror, web_server, capsys):
    _, digests = mirror
    path = fetch(
        tmp_path / "e",
        "numbers.txt",
        digests["numbers.txt"],
        ["http://127.0.0.1:1/", web_server],  # the first one refuses: next mirror
        timeout=5,
        progress=True,
    )
    assert path.read_text() == "1 2 3\n"
    assert "6.00/6.00" in capsys.readouterr().err  # tqdm's bar: 6 bytes of 6


def test_the_package_imports_without_the_data_extra():
    # pooch and tonic blocked: importing works, using them names the extra
    code = """
import sys
sys.modules["pooch"] = sys.modules["tonic"] = None
import numpy as np
from norse.dataset import cifar10, events, mnist, speech_commands, spiking_heidelberg
from norse.dataset.download import fetch
for call in (
    lambda: fetch(".", "x", "md5:0", []),
    lambda: events.events_to_frames(np.zeros(1, [("x", int), ("t", int), ("p", int)]), (1, 1, 1), n_time_bins=1),
    lambda: spiking_heidelberg.SpikingHeidelbergDigitsDataset("."),
):
    try:
        call()
    except ImportError as error:
        assert 'pip install "norse[data]"' in str(error), error
    else:
        raise AssertionError("no ImportError")
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
