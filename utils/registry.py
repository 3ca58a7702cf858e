"""Name -> class registries over a package folder (timm-style decorators).

Names are read from the `@register_...("name")` decorators in the folder's files, so listing them
(e.g. for --help) imports nothing; a module is imported when one of its entries is used. A file
dropped into the folder is therefore the whole change.
"""
import importlib
import os
import re

DECORATOR = re.compile(r"""^@register_\w+\(\s*["']([^"']+)["']""", re.M)


class UnknownNameError(ValueError):
    """Raised for a name that no module registers."""


class Registry:
    def __init__(self, kind, package):
        self.kind = kind
        self.package = package
        self._entries = {}
        self._modules = None

    def register(self, name):
        def decorator(cls):
            if name in self._entries and self._entries[name].__qualname__ != cls.__qualname__:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.NAME = name
            self._entries[name] = cls
            return cls
        return decorator

    def _scan(self):
        """{name: module} from the decorators of every public module in the package folder."""
        if self._modules is None:
            folder = os.path.dirname(importlib.import_module(self.package).__file__)
            self._modules = {}
            for filename in sorted(os.listdir(folder)):
                if filename.endswith(".py") and not filename.startswith("_"):
                    with open(os.path.join(folder, filename), encoding="utf-8") as f:
                        for name in DECORATOR.findall(f.read()):
                            self._modules[name] = f"{self.package}.{filename[:-3]}"
        return self._modules

    def names(self):
        return sorted(set(self._scan()) | set(self._entries))

    def get(self, name):
        if name not in self._entries and name in self._scan():
            importlib.import_module(self._scan()[name])
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r} (choose from {', '.join(self.names())})")
        return self._entries[name]
