"""ACK add-on configs checked against the part of each add-on's schema the offline engine can know.

ACK serves an add-on's config schema at deploy time (``cs.get_kubernetes_addon_metadata``); offline, a copy of
the relevant part lives in ``addon_schemas/<add-on>.json`` with its sources in ``$comment``. Add-ons without
a copy are not checked.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).with_name("addon_schemas")


class AddonConfigError(ValueError):
    """An add-on config the add-on would reject or silently ignore; the message names the add-on and path."""


@cache
def schema_of(addon: str) -> dict[str, Any] | None:
    path = SCHEMA_DIR / f"{addon}.json"
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def check_addon_config(addon: str, config: str | None) -> None:
    """Raise AddonConfigError when ``config`` (the JSON the provider sends) breaks the add-on's schema."""
    schema = schema_of(addon)
    if schema is None or not config:
        return
    try:
        document = json.loads(config)
    except json.JSONDecodeError as error:
        raise AddonConfigError(f"add-on {addon}: config is not JSON ({error.msg})") from None
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if found is not None:
        where = "/".join(str(part) for part in found.absolute_path) or "(top level)"
        raise AddonConfigError(
            f"add-on {addon}: config at {where}: {found.message[:200]} "
            f"(schema: offline_engine/addon_schemas/{addon}.json)"
        )
