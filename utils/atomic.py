"""Files written whole or not at all: a temp file beside the target, fsynced, renamed over it."""
import os


def fsync_folder(directory):
    fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path, write):
    """Call write(f) on a binary temp file beside `path`, fsync it, rename it to `path`, fsync the folder:
    a reader sees the old file or the new one, never a part."""
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    fsync_folder(os.path.dirname(path))
