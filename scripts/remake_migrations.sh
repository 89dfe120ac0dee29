#!/usr/bin/env bash
# Until the first release, the app has a single initial migration regenerated from the models,
# so parallel model changes never produce conflicting migration graphs.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f annotator/migrations/0*.py
.venv/bin/python manage.py makemigrations annotator -n initial
