"""encodenet-bench: a plugin-based harness for comparing accuracy-boosting methods for image classifiers."""

from harness.plugins.hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["hookimpl", "hookspec", "__version__"]
