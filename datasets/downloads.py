"""Download an official archive with torchvision's helper, or fail with one line saying where to put it."""
import os
from urllib.error import URLError

from torchvision.datasets.utils import download_and_extract_archive

from datasets.base import DataError


def remove_created_dirs(path, existed_before):
    """Remove the empty folders a failed download created, up to the first that existed before."""
    while path and path not in existed_before and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        path = os.path.dirname(path)


def download_or_fail(url, root, filename, md5, folder):
    """Fetch and extract `url` into `root` so that `folder` appears; DataError when offline."""
    root = os.path.abspath(root)
    existed = {p for p in (root, os.path.dirname(root)) if os.path.isdir(p)}
    try:
        download_and_extract_archive(url, root, filename=filename, md5=md5)
    except (URLError, OSError, RuntimeError) as error:
        remove_created_dirs(root, existed)
        raise DataError(f"no data in {folder} and the download of {filename} from {url} failed ({error}); "
                        f"download it and extract it into {root}") from None
