"""Response models and enumerations of the Avara API."""
