"""Typed errors shared by every layer; each names the input and what was wrong with it."""

from __future__ import annotations

from pathlib import Path


class VesselwatchError(Exception):
    """Base class of every error vesselwatch raises on purpose."""


class InputError(VesselwatchError, ValueError):
    """An input value (coordinate, parameter, file) is invalid; the message names it."""


class ProductError(VesselwatchError):
    """A product on disk cannot be read: missing band, corrupt file, no georeferencing, no water."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
