"""Avara Viewer: self-hosted user management for imaging clinics."""

__version__ = "0.1.0"
