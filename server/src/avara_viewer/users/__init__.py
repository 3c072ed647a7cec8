"""Viewer users: invite, list, retrieve, update, revoke access, reactivate."""
