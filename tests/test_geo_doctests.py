"""The Examples sections of the geo modules are tests: run them."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["geo.validation", "geo.unit_vectors", "geo.haversine", "geo.cube_cells", "geo.nearest",
           "geo.coastline", "geo.areas", "geo.angles"]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
