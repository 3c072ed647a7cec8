"""Invitations: the accept link sent to a new user, its status and delivery."""
