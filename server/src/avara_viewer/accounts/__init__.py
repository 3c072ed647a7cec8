"""Accounts: what a person does to sign in — passwords, sessions, password resets, login
throttling, MFA and single sign-on links."""
