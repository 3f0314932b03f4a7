"""gx_ids: a metric's kwargs named without GX's JSON converter get the id GX's own IDDict.to_id gives them.

The oracle is GX itself: its original method, called beside the replacement on every id GX asks for while the
project's ten suites validate a small clean world, and on the values the fast path must leave to GX.
"""

import datetime
import math

import numpy as np
import pytest
from great_expectations.core.id_dict import IDDict

from orchestration.lib import gx_ids
from orchestration.lib.contract import CONTRACTS
from tests.unit.test_quality_suites import conn, gate  # noqa: F401 (conn: the clean world, a fixture)


def test_installed_on_the_pinned_gx():
    assert gx_ids.install()
    assert IDDict.to_id is gx_ids.to_id and gx_ids.original() is not gx_ids.to_id


def test_every_id_the_suites_ask_for_is_the_id_gx_gives(conn, monkeypatch):  # noqa: F811
    gx_ids.install()
    gxs = gx_ids.original()
    asked, left_to_gx, differ = [0], [0], []

    def counted(*args):
        left_to_gx[0] += 1
        return gxs(*args)

    def both(self, id_keys=None, id_ignore_keys=None):
        theirs = gxs(self, id_keys, id_ignore_keys)
        ours = gx_ids.to_id(self, id_keys, id_ignore_keys)
        asked[0] += 1
        if ours != theirs:
            differ.append((dict(self), id_keys, id_ignore_keys, ours, theirs))
        return theirs

    monkeypatch.setitem(gx_ids._ORIGINAL, "to_id", counted)
    monkeypatch.setattr(IDDict, "to_id", both)
    monkeypatch.setattr(gx_ids, "install", lambda: True)  # each gate's GX context would put ours back
    for table in CONTRACTS:
        assert gate(conn, table).success, table
    assert differ == []
    # the comparison means something: thousands of ids, most of them named without GX's converter
    assert asked[0] > 2_000 and asked[0] - left_to_gx[0] > asked[0] / 2, (asked, left_to_gx)


class Model:  # neither JSON nor anything the fast path knows: GX's converter decides
    def __str__(self):
        return "model"


VALUES = {
    "text": "text",
    "whole": 7,
    "bool": True,
    "none": None,
    "float": 0.25,
    "infinity": math.inf,
    "negative zero": -0.0,
    "list": [1, "a", None],
    "tuple": (1, 2),  # a list to both
    "nested dict": {"nested": {"deeper": [True, 1.5]}},
    "iddict": IDDict({"column": "score", "batch_id": "b"}),
    "nan": math.nan,  # GX: null
    "list with nan": [1.0, math.nan],
    "date": datetime.date(2026, 9, 1),  # GX: its ISO string
    "numpy int": np.int64(3),
    "numpy float": np.float64(0.1),
    "numpy bool": np.bool_(True),
    "numeric key": {1: "a numeric key"},  # GX: the key as a string
    "set": {"a", "set"},
    "object": Model(),
}


@pytest.mark.parametrize("value", VALUES.values(), ids=VALUES.keys())
def test_a_value_gets_the_id_gx_gives_it(value):
    gx_ids.install()
    kwargs = IDDict({"column": "score", "value": value, "row_condition": None})
    for keys, ignored in ((None, None), (["value", "column"], None), (None, ["row_condition"]), (["value"], None)):
        assert _named(gx_ids.to_id, kwargs, keys, ignored) == _named(gx_ids.original(), kwargs, keys, ignored)
    assert gx_ids.to_id(kwargs, [], None) == () == gx_ids.original()(kwargs, [], None)


def _named(to_id, kwargs, keys, ignored):
    """The id, or the error GX's converter raises on a value it cannot write."""
    try:
        return to_id(kwargs, keys, ignored)
    except TypeError as err:
        return type(err), str(err)
