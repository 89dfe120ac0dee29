"""gunicorn settings for the throwaway servers of scripts/live_server.py.

The app is loaded once in the master (preload) together with every URL module, which pulls in
torch and transformers; forked workers then share those imports instead of each spending many
seconds on them before their first answer.
"""

preload_app = True


def when_ready(server) -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (importing every view module is the point)
