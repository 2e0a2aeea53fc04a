from django.test import Client


def logged_in(user) -> Client:
    """A separate client per user, for tests that act as several roles."""
    client = Client()
    client.force_login(user)
    return client
