"""Importing the modules a spec names: one that crashes on import is the spec's problem.

Every caller already reports an ``ImportError`` at the key that named the module (a missing
dependency, a typo). A module that raises anything else while it is imported, or calls
``sys.exit``, is reported the same way, as ``ModuleCrashedError``: it is the user's code
that failed, not tunedag.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tunedag.text import error_text


class ModuleCrashedError(ImportError):
    """A module raised something other than ImportError (or exited) while imported."""


def import_user_module(name: str) -> ModuleType:
    """``importlib.import_module``, with any failure raised as an ``ImportError``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise
    except (Exception, SystemExit) as error:
        raise ModuleCrashedError(f"importing {name!r} raised {error_text(error)}") from error
