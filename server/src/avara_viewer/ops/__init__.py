"""Operating the service: health and readiness, metrics, structured logs, request ids,
per-API-key rate limits, HTTP head limits and online backup."""
