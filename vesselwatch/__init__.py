"""vesselwatch: watch the sea from Sentinel-2 imagery.

The installable distribution ships five layers (``geo``, ``models``, ``pipeline``, ``flows``,
``api``) as top-level packages, exactly as the design card lays them out, plus this small
package that holds what they share: the one settings object and the command line.
"""

__version__ = "0.1.0"
