"""Download an official archive with torchvision's helper, or fail with one line saying where to put it."""
import os
from urllib.error import URLError

from torchvision.datasets.utils import download_and_extract_archive

from datasets.base import DataError
from utils.plumbing.files import nearest_existing


def remove_created_dirs(path, existed_before):
    """Remove the empty folders a failed download created, up to the first that existed before."""
    while path and path not in existed_before and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        path = os.path.dirname(path)


def require_writable(root, filename, folder):
    """A download needs to write `filename` into `root`: say so in one line when it cannot."""
    ancestor = nearest_existing(root)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(f"no data in {folder}, and {os.path.join(root, filename)} cannot be written to download "
                        f"it ({ancestor} is read-only); put the data there, or give a writable --data_path")


def download_or_fail(url, root, filename, md5, folder):
    """Fetch and extract `url` into `root` so that `folder` appears; DataError when offline."""
    root = os.path.abspath(root)
    require_writable(root, filename, folder)
    existed = {p for p in (root, os.path.dirname(root)) if os.path.isdir(p)}
    try:
        download_and_extract_archive(url, root, filename=filename, md5=md5)
    except (URLError, OSError, RuntimeError) as error:
        remove_created_dirs(root, existed)
        raise DataError(f"no data in {folder} and the download of {filename} from {url} failed ({error}); "
                        f"download it and extract it into {root}") from None
