"""Background jobs (RQ). The wiring comes with the jobs issue; base.py gives
every job and CLI command an acting user so each change is attributed."""
