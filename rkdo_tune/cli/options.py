"""Click options generated from the TrialConfig fields, so flags never drift from config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from rkdo_tune.config import FIELDS, field_kind, is_optional
from rkdo_tune.protocols import FROM_PROTOCOL

# What an optional number flag holds for 'none': a given value, apart from "not given".
_GIVEN_NONE = object()


class _OptionalNumber(click.ParamType):
    """An int or float flag that also accepts 'none' (e.g. --steps-per-epoch none)."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = f"{kind.__name__}|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or value is _GIVEN_NONE:
            return value
        if isinstance(value, str) and value.lower() == "none":
            return _GIVEN_NONE
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a valid {self.kind.__name__} (or 'none')", param, ctx)


def _option_for(name: str) -> Callable[[Callable], Callable]:
    spec = FIELDS[name]
    kind = field_kind(name)
    flag = "--" + name.replace("_", "-")
    choices = spec.metadata.get("choices")
    default = "from --protocol" if spec.default is FROM_PROTOCOL else spec.default
    default_text = f" [default: {default}]"
    help_text = spec.metadata.get("help", "") + default_text
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    if choices:
        param_type: Any = click.Choice(choices)
    elif is_optional(name) and kind in (int, float):
        param_type = _OptionalNumber(kind)
    else:
        param_type = kind
    return click.option(flag, name, type=param_type, default=None, help=help_text)


def config_options(func: Callable) -> Callable:
    """Decorate a command with one option per config field (all default to 'not given')."""
    for name in reversed(list(FIELDS)):
        func = _option_for(name)(func)
    return func


def given_options(params: dict[str, Any]) -> dict[str, Any]:
    """The config fields the user actually passed on the command line ('none' included)."""
    given = {name: value for name, value in params.items() if name in FIELDS and value is not None}
    return {name: None if value is _GIVEN_NONE else value for name, value in given.items()}
