"""The Celery worker side: the ``nmtune.run_job`` task, worker boot, per-process state."""
