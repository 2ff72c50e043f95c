"""Configuration: the TOML file of SPEC section 2, read once into immutable settings."""

from config.settings import Settings, load_settings, settings_from_mapping

__all__ = ["Settings", "load_settings", "settings_from_mapping"]
