"""Micro-batching of single-point nearest-platform queries.

:meth:`geo.nearest.PlatformIndex.query` is vectorized: one call for 30 points costs about as much
as one call for a single point (a few hundred microseconds of NumPy set-up either way). Under load
many ``GET /platforms/nearest`` requests are parsed in the same turn of the event loop, so each is
parked on a future and all of them are answered by one index call scheduled with
``loop.call_soon`` — no timer, so an isolated request waits for nothing, and a busy server answers
N points per index call instead of one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np


class NearestBatcher:
    """Answer concurrent single-point queries with one :meth:`PlatformIndex.query` call per loop turn.

    Parameters
    ----------
    index
        A :class:`geo.nearest.PlatformIndex`.
    max_batch
        Largest batch answered in one call (more waiting points go to the next turn).
    """

    def __init__(self, index: Any, max_batch: int = 4096) -> None:
        self.index = index
        self.max_batch = max_batch
        self._pending: list[tuple[float, float, asyncio.Future]] = []
        self._scheduled = False

    async def nearest(self, lon: float, lat: float) -> tuple[float, np.ndarray]:
        """``(distance_km, tied row numbers)`` of the platforms nearest to ``(lon, lat)``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((lon, lat, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        self._scheduled = bool(self._pending)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._flush)
        live = [item for item in batch if not item[2].done()]
        if not live:
            return
        lon = np.fromiter((item[0] for item in live), dtype=np.float64, count=len(live))
        lat = np.fromiter((item[1] for item in live), dtype=np.float64, count=len(live))
        try:
            result = self.index.query(lon, lat)
        except Exception as error:  # every waiting request gets the error, none hangs
            for _, _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        offsets = result.tie_offsets
        for i, (_, _, future) in enumerate(live):
            if not future.done():
                future.set_result((float(result.distance_km[i]), result.tie_index[offsets[i] : offsets[i + 1]]))
