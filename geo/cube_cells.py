"""Cube-face quadtree cells on the unit sphere (the divide-and-conquer partition of :mod:`geo`).

The sphere is projected gnomonically onto the six faces of the circumscribed cube; each face is a
quadtree of square cells in face coordinates ``(u, v)`` in ``[-1, 1]``. Gnomonic cell edges are
great-circle arcs, so every cell is a convex spherical quadrilateral and the farthest point of a
cell from any point inside it is one of its four corners: the cell's covering cap (centre and
angular radius) is exact, which is what makes the lower bounds of the indices provable.

A cell is ``(face, i, j, level)``; its code at a finer ``level_max`` is
``face << (2 * level_max) | morton(i, j) << 2 * (level_max - level)``, so the codes of a set of leaf
cells sorted ascending partition the line and a point's leaf is one ``searchsorted`` away.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: Major axis and the two minor axes of each face (faces 0-2: +x, +y, +z; 3-5: -x, -y, -z).
_FACE_AXES = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1]] * 2, dtype=np.int64)
_FACE_SIGN = np.array([1.0, 1.0, 1.0, -1.0, -1.0, -1.0])


def face_uv(xyz: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Face number and gnomonic face coordinates ``(u, v)`` in ``[-1, 1]`` of unit vectors ``(n, 3)``."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    ax, ay, az = np.abs(x), np.abs(y), np.abs(z)
    on_x = (ax >= ay) & (ax >= az)
    on_y = ~on_x & (ay >= az)
    on_z = ~on_x & ~on_y
    major = np.where(on_x, x, np.where(on_y, y, z))
    face = np.where(on_x, 0, np.where(on_y, 1, 2)) + 3 * (major < 0)
    inv = 1.0 / np.abs(major)
    # minor axes per _FACE_AXES: x-faces (y, z), y-faces (z, x), z-faces (x, y)
    u = np.where(on_x, y, np.where(on_y, z, x)) * inv
    v = np.where(on_x, z, np.where(on_y, x, y)) * inv
    return face.astype(np.int64), u, v


def face_uv_to_xyz(face: IntArray, u: FloatArray, v: FloatArray) -> FloatArray:
    """Unit vectors of face coordinates (inverse of :func:`face_uv`)."""
    face = np.asarray(face, dtype=np.int64)
    u, v = np.broadcast_arrays(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))
    out = np.zeros(u.shape + (3,), dtype=np.float64)
    flat = out.reshape(-1, 3)
    rows = np.arange(flat.shape[0])
    face = np.broadcast_to(face, u.shape).ravel()
    flat[rows, _FACE_AXES[face, 0]] = _FACE_SIGN[face]
    flat[rows, _FACE_AXES[face, 1]] = u.ravel()
    flat[rows, _FACE_AXES[face, 2]] = v.ravel()
    flat /= np.linalg.norm(flat, axis=1)[:, None]
    return out


def _spread_bits(x: IntArray) -> IntArray:
    x = x.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    x = (x | (x << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    x = (x | (x << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x | (x << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    x = (x | (x << np.uint64(2))) & np.uint64(0x3333333333333333)
    x = (x | (x << np.uint64(1))) & np.uint64(0x5555555555555555)
    return x


def morton(i: IntArray, j: IntArray) -> IntArray:
    """Interleave the bits of ``i`` (odd positions) and ``j`` (even positions)."""
    return ((_spread_bits(i) << np.uint64(1)) | _spread_bits(j)).astype(np.int64)


def point_cells(xyz: FloatArray, level: int) -> tuple[IntArray, IntArray, IntArray]:
    """``(face, i, j)`` of the cell at ``level`` that contains each unit vector."""
    face, u, v = face_uv(xyz)
    size = 1 << level
    i = np.clip(((u + 1.0) * (0.5 * size)).astype(np.int64), 0, size - 1)
    j = np.clip(((v + 1.0) * (0.5 * size)).astype(np.int64), 0, size - 1)
    return face, i, j


def cell_code(face: IntArray, i: IntArray, j: IntArray, level: int, level_max: int) -> IntArray:
    """Code at ``level_max`` of the first descendant of cell ``(face, i, j)`` at ``level``."""
    return (np.asarray(face, np.int64) << (2 * level_max)) | (morton(i, j) << (2 * (level_max - level)))


def point_codes(xyz: FloatArray, level_max: int) -> IntArray:
    """Codes at ``level_max`` of the cells containing each unit vector."""
    face, i, j = point_cells(xyz, level_max)
    return cell_code(face, i, j, level_max, level_max)


def cell_caps(face: IntArray, i: IntArray, j: IntArray, level: int) -> tuple[FloatArray, FloatArray]:
    """Covering caps of cells: centre unit vectors ``(m, 3)`` and angular radius (radians).

    The radius is the largest angle from the centre to the four corners (exact for a convex
    spherical quadrilateral), enlarged by ``1e-12`` rad to absorb rounding.
    """
    scale = 2.0 / (1 << level)
    u0 = -1.0 + i * scale
    v0 = -1.0 + j * scale
    centre = face_uv_to_xyz(face, u0 + 0.5 * scale, v0 + 0.5 * scale)
    radius = np.zeros(centre.shape[0])
    for du in (0.0, scale):
        for dv in (0.0, scale):
            corner = face_uv_to_xyz(face, u0 + du, v0 + dv)
            cross = np.cross(centre, corner)
            angle = np.arctan2(np.linalg.norm(cross, axis=1), np.einsum("ij,ij->i", centre, corner))
            np.maximum(radius, angle, out=radius)
    return centre, radius + 1e-12
