"""Synthetic Sentinel-2 products of real MGRS tiles, with vessels, wakes, clouds and truth.

>>> from pipeline.synthetic import write_product  # doctest: +SKIP
>>> info = write_product("out", seed=1, size_px=1024, layout="safe", level="L2A")  # doctest: +SKIP
>>> info.product_path, info.truth_path  # doctest: +SKIP
"""

from pipeline.synthetic.product import ProductInfo, write_product

__all__ = ["ProductInfo", "write_product"]
