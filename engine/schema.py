"""The JSON Schema of the spec, with each installed plugin's own options schema."""

from __future__ import annotations

from typing import Any

from tunedag.registry import Plugins
from tunedag.spec.models import Spec


def spec_schema(plugins: Plugins) -> dict[str, Any]:
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tunedag spec"
    definitions = schema.setdefault("$defs", {})
    properties = schema["properties"]
    for kind in ("sampler", "pruner"):
        variants = _variants(plugins, kind, definitions)
        properties[kind] = {"oneOf": variants, "description": f"the {kind} plugin"}
    observers = _variants(plugins, "observer", definitions)
    if observers:  # an empty oneOf is no schema; without observers, keep the plain items
        properties["observers"]["items"] = {"oneOf": observers}
    executors = sorted(plugins.provided["executor"])
    execution = definitions["ExecutionSpec"]["properties"]["executor"]
    execution["enum"] = executors
    return schema


def _variants(plugins: Plugins, kind: str, definitions: dict[str, Any]) -> list[dict[str, Any]]:
    """One `{name, options}` object a plugin of ``kind``, its options in its own schema."""
    variants = []
    for name, provided in sorted(plugins.provided[kind].items()):
        options = provided.cls.Options.model_json_schema(ref_template="#/$defs/{model}")
        definitions.update(options.pop("$defs", {}))
        options["title"] = f"{kind} {name} options"
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": name}, "options": options},
                "required": ["name"],
                "additionalProperties": False,
            }
        )
    return variants
