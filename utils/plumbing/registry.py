"""Name -> class (or function) registries over a package folder (timm-style decorators).

Names and one-line descriptions are read from the `@register_...("name")` decorators and class
docstrings of the folder's files (parsed, not imported), so listing them (e.g. for --help) imports
nothing; a module is imported when one of its entries is used. A file dropped into the folder is
therefore the whole change.
"""
import ast
import importlib
import os


def registered_classes(source):
    """(name, first docstring paragraph) of each class or function decorated with @register_...("name") in
    `source`."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            continue
        for decorator in node.decorator_list:
            if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
                    and decorator.func.id.startswith("register_") and decorator.args
                    and isinstance(decorator.args[0], ast.Constant) and isinstance(decorator.args[0].value, str)):
                doc = (ast.get_docstring(node) or "").strip()
                found.append((decorator.args[0].value, doc.split("\n\n")[0].replace("\n", " ")))
    return found


def dict_keys(path, name):
    """The keys of the dict literal assigned to `name` at the top of the module file `path`, read without
    importing it."""
    with open(path, encoding="utf-8") as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return tuple(key.value for key in node.value.keys)
    raise LookupError(f"{path} assigns no {name}")


class UnknownNameError(ValueError):
    """Raised for a name that no module registers."""


class Registry:
    def __init__(self, kind, package):
        self.kind = kind
        self.package = package
        self._entries = {}
        self._modules = None
        self._descriptions = {}

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
                        for name, description in registered_classes(f.read()):
                            self._modules[name] = f"{self.package}.{filename[:-3]}"
                            self._descriptions[name] = description
        return self._modules

    def describe(self, name):
        """The first paragraph of the entry's docstring, read without importing it."""
        self._scan()
        if name not in self._descriptions and name in self._entries:
            return (self._entries[name].__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        return self._descriptions.get(name, "")

    def names(self):
        return sorted(set(self._scan()) | set(self._entries))

    def get(self, name):
        if name not in self._entries and name in self._scan():
            importlib.import_module(self._scan()[name])
        if name not in self._entries:
            raise UnknownNameError(f"unknown {self.kind} {name!r} (choose from {', '.join(self.names())})")
        return self._entries[name]
