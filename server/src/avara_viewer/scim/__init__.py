"""SCIM 2.0 service provider (RFC 7643/7644): a clinic's identity provider manages its people."""
