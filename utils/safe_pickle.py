"""Restricted unpickling: numpy arrays and builtin containers only, nothing callable."""
import pickle

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
