"""Django's SQLite backend with write transactions that take turns fairly (see base.py)."""
