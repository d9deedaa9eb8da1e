"""The tools a bot can be given (ChatAgent's plugins, Agent v2's tools): each module of this
package is one tool, found here by its `SPEC` and `run`."""

import importlib
import pkgutil

from tertulia.core.tools.base import Tool, ToolContext, ToolFailed, ToolSpec

_NOT_TOOLS = {"base", "calling"}


def _discover() -> dict[str, Tool]:
    found: dict[str, Tool] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name in _NOT_TOOLS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        tool = Tool(module.SPEC, module.run)
        found[tool.spec.id] = tool
    return found


TOOLS: dict[str, Tool] = _discover()

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolFailed", "ToolSpec"]
