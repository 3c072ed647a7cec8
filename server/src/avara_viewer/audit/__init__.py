"""The append-only audit trail, hash-chained per clinic."""
