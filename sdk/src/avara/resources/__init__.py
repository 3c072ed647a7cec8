"""The resource namespaces of the client."""
