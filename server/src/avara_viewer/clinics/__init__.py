"""Clinics, their API keys, and authentication of API requests."""
