"""The message state table of PROTOCOL.md section 4, row by row."""

from __future__ import annotations

import pytest

from smsgw.domain.model import State

# (statusstr, final, statuscode) exactly as the table in PROTOCOL.md section 4.
TABLE = [
    ("WAITING", False, 0),
    ("QUEUED", False, 0),
    ("ENROUTE", False, 0),
    ("DELIVRD", True, 0),
    ("ACCEPTD", True, 0),
    ("CANCEL", True, 0),
    ("EXPIRED", True, -10),
    ("DELETED", True, -10),
    ("UNDELIV", True, -10),
    ("ABSENT", True, -10),
    ("SPAM", True, -10),
    ("BLOCK", True, -10),
    ("UNKNOWN", True, -10),
    ("REJECTD", True, -10),
    ("SYNTAXE", True, -10),
]


@pytest.mark.parametrize(("statusstr", "final", "statuscode"), TABLE)
def test_state_row(statusstr: str, final: bool, statuscode: int) -> None:
    """Each state shows its table-2 statusstr, finality and statuscode."""
    state = State(statusstr)
    assert state.value == statusstr
    assert state.final is final
    assert state.statuscode == statuscode


def test_table_lists_every_state() -> None:
    """No state exists that the table does not describe."""
    assert {row[0] for row in TABLE} == {state.value for state in State}
