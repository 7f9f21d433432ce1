"""Command-line tasks (``python -m norse.task.<name>``) on one shared training harness."""
