"""The protocol presets: config fields by name, documented in one README table."""

from __future__ import annotations

import re
from pathlib import Path

from rkdo_tune.config import FIELDS, PROTOCOLS
from rkdo_tune.protocols import FROM_PROTOCOL, PRESET_FIELDS, PRESETS

README = Path(__file__).parents[1] / "README.md"


def test_the_preset_fields_are_exactly_the_config_fields_defaulting_to_the_protocol():
    from_protocol = {name for name, spec in FIELDS.items() if spec.default is FROM_PROTOCOL}
    assert set(PRESET_FIELDS) == from_protocol
    assert PROTOCOLS == tuple(PRESETS) == ("paper", "paper_latest", "full")


def _cell(value: object) -> str:
    return "none" if value is None else str(value)


def test_the_readme_table_is_the_presets():
    rows = {}
    for line in README.read_text().splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (.+) \|", line)
        if match and match.group(1) in PRESET_FIELDS:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    expected = {
        name: [_cell(getattr(PRESETS[protocol], name)) for protocol in PROTOCOLS]
        for name in PRESET_FIELDS
    }
    assert rows == expected
