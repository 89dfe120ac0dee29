"""Login rate limiting (django-axes) for the login form."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LoginRateLimitBackend(AxesStandaloneBackend):
    """Axes' lockout check, applied to logins that come from an HTTP request.

    Axes refuses to authenticate without a request; programmatic logins (management commands,
    the test client's `login()`) have no client to rate-limit, so they skip the check instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
