"""Name -> class registries with auto-import of every module in a package (timm-style)."""
import importlib
import pkgutil


class UnknownNameError(ValueError):
    """Raised for a name that no module registered."""


class Registry:
    """Maps names to classes; the first lookup imports every module of `package`."""

    def __init__(self, kind, package):
        self.kind = kind
        self.package = package
        self._entries = {}
        self._imported = False

    def register(self, name):
        def decorator(cls):
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.NAME = name
            self._entries[name] = cls
            return cls
        return decorator

    def _import_all(self):
        if self._imported:
            return
        self._imported = True
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def names(self):
        self._import_all()
        return sorted(self._entries)

    def get(self, name):
        self._import_all()
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r} (choose from {', '.join(self.names())})")
        return self._entries[name]
