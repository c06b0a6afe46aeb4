"""The one settings object.

Every value has an embedded default that works on a fresh clone (SQLite under ``var/``, the
bundled reference data under ``data/``) and can be overridden by an environment variable named
``VESSELWATCH_<FIELD>`` (for example ``VESSELWATCH_DATABASE_URL=postgresql://...``) or by a
``.env`` file in the working directory. Settings are passed explicitly; nothing reads them from
module-level state.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Root of the repository checkout (the package is installed in editable mode from it).
PROJECT_DIR = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration; environment variables ``VESSELWATCH_*`` override each field."""

    model_config = SettingsConfigDict(env_prefix="VESSELWATCH_", env_file=".env", extra="ignore")

    data_dir: Path = Field(PROJECT_DIR / "data", description="Bundled reference and sample data.")
    var_dir: Path = Field(PROJECT_DIR / "var", description="Runtime files: database, chips, runs.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite at var/vesselwatch.sqlite.")

    coastline_path: Path | None = Field(None, description="Coastline lines (GeoJSON, may be .gz); default NE 50m.")
    land_path: Path | None = Field(None, description="Land polygons for water masks; default NE 10m land.")
    platforms_path: Path | None = Field(None, description="Platform register (CSV/GeoJSON/GPKG); default demo set.")
    protected_areas_path: Path | None = Field(None, description="Protected areas (GeoJSON/GPKG/SHP); default demo set.")
    heading_weights_path: Path | None = Field(None, description="Wake-keypoint weights; default the shipped file.")

    chip_size_px: int = Field(128, ge=16, le=1024, description="Chip edge length in pixels (10 m grid).")
    alert_radius_km: float = Field(10.0, gt=0, description="Default per-area alert radius, km.")
    alert_lookahead_km: float = Field(30.0, gt=0, description="How far along the heading ray to look, km.")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_key: str = Field("", description="Key for write endpoints; empty disables writes.")
    api_read_requires_key: bool = False
    api_cors_origins: list[str] = Field(default_factory=list)
    api_max_upload_bytes: int = Field(8 * 1024 * 1024, gt=0)
    api_webhook_urls: list[str] = Field(
        default_factory=list, description="URLs that receive each new alert as a signed JSON POST."
    )
    api_webhook_secret: str = Field("", description="HMAC-SHA256 key signing webhook bodies; empty: unsigned.")

    inbox_dir: Path | None = Field(None, description="Folder the monitor watches; default var/inbox.")

    log_level: str = "INFO"

    # -- derived paths -------------------------------------------------------------------------
    def resolved_inbox_dir(self) -> Path:
        """The monitor's inbox (``var/inbox`` under ``var_dir`` by default)."""
        return self.inbox_dir or self.var_dir / "inbox"

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL to use: the configured one, else SQLite under ``var_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'vesselwatch.sqlite').as_posix()}"

    def resolved_coastline_path(self) -> Path:
        """Coastline file to index (Natural Earth 1:50m by default)."""
        return self.coastline_path or self.data_dir / "naturalearth" / "ne_50m_coastline.json.gz"

    def resolved_land_path(self) -> Path:
        """Land polygons used for water masks (Natural Earth 1:10m by default)."""
        return self.land_path or self.data_dir / "naturalearth" / "ne_10m_land.json.gz"

    def resolved_platforms_path(self) -> Path:
        """Platform register (the bundled synthetic demo register by default)."""
        return self.platforms_path or self.data_dir / "reference" / "platforms_demo.csv"

    def resolved_protected_areas_path(self) -> Path:
        """Protected areas (the bundled synthetic demo areas by default)."""
        return self.protected_areas_path or self.data_dir / "reference" / "protected_areas_demo.geojson"

    def resolved_heading_weights_path(self) -> Path:
        """Wake-keypoint model weights (the file shipped in ``models/weights`` by default)."""
        return self.heading_weights_path or PROJECT_DIR / "models" / "weights" / "wake_keypoints_b0.pt"
