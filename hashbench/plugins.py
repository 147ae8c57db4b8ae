"""Methods and feature extractors from outside hashbench.

Two ways in, both checked before any work starts (a failure is one :class:`InputError`
line naming the plugin, exit 2):

- **entry points** of installed packages, groups ``hashbench.hashers`` and
  ``hashbench.extractors``, value ``module:Class``; the entry point's name is the method's
  (or extractor's) name. Declared in the package's ``pyproject.toml``::

      [project.entry-points."hashbench.hashers"]
      pca-rr = "hashbench_pcarr:PCARR"

- ``--plugin MODULE`` (repeatable, any command) for code that is not an installed package:
  the module is imported and registers its classes itself with ``@register(name)`` /
  ``@register_extractor(name)``.

A name already taken (a built-in or another plugin) is refused, never replaced. Worker
processes of ``run --jobs N`` call :func:`load_plugins` with the same module list
(:func:`worker_modules`) before running a cell, so they know the same methods.
"""

import importlib
import importlib.metadata
import sys

from .errors import InputError, NameClash
from .features import base as features_base
from .hashers import base as hashers_base

GROUPS = {
    "hashbench.hashers": ("method", hashers_base, hashers_base.Hasher),
    "hashbench.extractors": ("extractor", features_base, features_base.Extractor),
}

_modules: list[str] = []  # --plugin modules loaded in this process, in order
_entry_points_loaded = False


def load_plugins(modules=()) -> None:
    """Register the entry points of installed packages (once per process) and import the
    given ``--plugin`` modules (each once). InputError on the first failure."""
    load_entry_points()
    for name in modules:
        load_module(name)


def loaded_modules() -> list[str]:
    """The ``--plugin`` modules loaded so far, in order."""
    return list(_modules)


def load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for group, (kind, room, base) in GROUPS.items():
        registry = room.HASHERS if kind == "method" else room.EXTRACTORS
        seen = set()
        for ep in importlib.metadata.entry_points(group=group):
            if (ep.name, ep.value) in seen:  # one distribution found twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            origin = f"package {ep.dist.name}" if ep.dist is not None else f"entry point {ep.value}"
            where = f"plugin {origin}: {group} entry point {ep.name} = {ep.value}"
            if ep.name in registry:
                raise InputError(f"{where}: the {kind} name {ep.name!r} is taken ({room.ORIGINS[ep.name]})")
            try:
                cls = ep.load()
            except Exception as e:  # noqa: BLE001  (any failure in foreign code is the plugin's)
                raise InputError(f"{where}: failed to load ({type(e).__name__}: {e})") from None
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise InputError(f"{where}: {ep.value} is not a subclass of hashbench's {base.__name__}")
            register = room.register if kind == "method" else room.register_extractor
            try:
                register(ep.name, origin=origin)(cls)
            except TypeError as e:  # a hasher whose declarations contradict its parameters
                raise InputError(f"{where}: {e}") from None


def load_module(name: str) -> None:
    """Import ``--plugin`` module ``name``; the classes it registers are marked as its."""
    if name in _modules:
        return
    before = {"method": set(hashers_base.HASHERS), "extractor": set(features_base.EXTRACTORS)}
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise InputError(f"--plugin {name}: no module named {e.name!r} (is its folder on PYTHONPATH?)") from None
        raise InputError(f"--plugin {name}: importing it failed ({type(e).__name__}: {e})") from None
    except NameClash as e:
        sys.modules.pop(name, None)
        raise InputError(f"--plugin {name}: {e}; choose another name") from None
    except TypeError as e:
        sys.modules.pop(name, None)
        raise InputError(f"--plugin {name}: {e}") from None
    except Exception as e:  # noqa: BLE001  (any failure in foreign code is the plugin's)
        sys.modules.pop(name, None)
        raise InputError(f"--plugin {name}: importing it failed ({type(e).__name__}: {e})") from None
    for n in set(hashers_base.HASHERS) - before["method"]:
        hashers_base.ORIGINS[n] = f"--plugin {name}"
    for n in set(features_base.EXTRACTORS) - before["extractor"]:
        features_base.ORIGINS[n] = f"--plugin {name}"
    _modules.append(name)


def worker_modules(methods=()) -> list[str]:
    """The modules a worker process must import to know ``methods``: every loaded ``--plugin``
    module, and the module of any method registered by other means (a class registered in
    an imported module). A method defined in a script (``__main__``) cannot be imported by
    a worker: InputError saying so."""
    modules = loaded_modules()
    for m in dict.fromkeys(methods):
        cls = hashers_base.HASHERS.get(m)
        if cls is None or hashers_base.ORIGINS.get(m, "").startswith(("built-in", "package ")):
            continue
        if cls.__module__ == "__main__":
            raise InputError(f"method {m!r} is defined in the running script, which worker processes cannot "
                             "import; put it in a module and load it with --plugin MODULE (or use --jobs 1)")
        if cls.__module__ not in modules:
            modules.append(cls.__module__)
    return modules
