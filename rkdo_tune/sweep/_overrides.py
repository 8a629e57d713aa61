"""`--set a.b.c=value` on a search-space file, checked against the keys the schema knows."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from rkdo_tune.config import FIELDS, parse_override, suggest_key
from rkdo_tune.errors import UsageError
from rkdo_tune.sweep._checks import PARAM_KEYS, SECTION_KEYS, TOP_KEYS


def _allowed_keys(data: Mapping, prefix: list[str], leaf: bool) -> Sequence[str] | None:
    """Which keys `--set` may name under `prefix` (None: nothing is addressable there)."""
    if not prefix:
        return TOP_KEYS
    if prefix == ["parameters"] and not leaf:  # going deeper needs an existing parameter
        params = data.get("parameters")
        return tuple(params) if isinstance(params, dict) else ()
    if len(prefix) == 1:
        return SECTION_KEYS.get(prefix[0])
    if prefix[0] == "parameters" and len(prefix) == 2:
        return PARAM_KEYS
    if prefix[0] == "parameters" and len(prefix) == 3 and prefix[2] == "when":
        return tuple(FIELDS)
    return None


def apply_overrides(raw: Mapping, overrides: Sequence[str]) -> dict:
    """A copy of `raw` with each 'a.b.c=value' set (value typed by YAML rules)."""
    data = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node = data
        for depth, part in enumerate(parts):
            leaf = depth == len(parts) - 1
            allowed = _allowed_keys(data, parts[:depth], leaf)
            under = ".".join(parts[:depth])
            if allowed is None:
                raise UsageError(f"--set {key}: '{under}' has no keys that --set can change")
            if part not in allowed:
                where = f" under '{under}'" if under else ""
                raise UsageError(
                    f"--set {key}: unknown key '{part}'{where}{suggest_key(part, allowed)}"
                )
            if leaf:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return data
