"""The one version source: hatch reads it at build time (``[tool.hatch.version]``), the
package imports it, which is cheaper than asking ``importlib.metadata``."""

__version__ = "0.1.0"
