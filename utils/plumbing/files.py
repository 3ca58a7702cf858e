"""Files: written whole or not at all (a temp file beside the target, fsynced, renamed over it), folders
checked before anything runs, and pickles read with nothing callable in them (numpy arrays and builtin
containers only)."""
import os
import pickle


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


def nearest_existing(path):
    """`path` itself if it exists, else its closest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def folder_problem(path):
    """Why `path` cannot be a folder to write into (an existing file, or under a file, or under a folder
    that cannot be written), or None."""
    existing = nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written into"
    return None


ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for a global outside ALLOWED_GLOBALS."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refused to load {module}.{name}: only numpy arrays and builtins are allowed")
        return super().find_class(module, name)


def load_pickle(path, encoding="latin1"):
    """Unpickle `path` with RestrictedUnpickler (latin1 reads the Python 2 pickles of CIFAR)."""
    with open(path, "rb") as f:
        return RestrictedUnpickler(f, encoding=encoding).load()
