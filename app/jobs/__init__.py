"""Background jobs (RQ): queue.py enqueues (after the commit; inline without Redis),
worker.py runs them in an app context, schedule.py is the cron schedule; base.py gives
every job and CLI command an acting user so each change is attributed."""
