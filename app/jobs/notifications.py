"""Notification jobs (run by an RQ worker)."""
from __future__ import annotations


def send_notification(log_id: int, subject: str | None = None, body: str | None = None) -> None:
    """Send the notification recorded as NotificationLog `log_id`. A free-text message
    (kind "message"/"recall") brings its subject and body along: they are never stored.

    The channels (SMTP, SMS/Telegram gateways) arrive with the jobs issue; until
    then the row stays "queued", which is exactly what it records.
    """
    return None
