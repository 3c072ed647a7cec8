"""Webhooks (Standard Webhooks): endpoints per clinic, events recorded in the transaction of the
change that caused them, and signed delivery with retries from a durable queue.

- :mod:`.models`: the tables (endpoints, events, deliveries, attempts, the expiry sweep).
- :mod:`.record`: turns domain events (and email outcomes, expiries) into queued deliveries.
- :mod:`.signing`: secrets and the Standard Webhooks signature.
- :mod:`.addresses`: which URLs and addresses may be called (no SSRF by default).
- :mod:`.delivery`: the loop that claims, POSTs and records, and the expiry sweeper.
- :mod:`.service`, :mod:`.schemas`, :mod:`.endpoints`: the /v1/viewer/webhook-endpoints API.
"""
