"""The HTTP kit of the JSON API: idempotent mutations, JSON bodies and responses, problem docs.

It knows the database layer and the error types, never the application: callers pass in what
a function needs (the Database, the Idempotency-Key TTL).
"""
