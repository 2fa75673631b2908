"""Notification jobs (run by an RQ worker)."""
from __future__ import annotations


def send_notification(log_id: int) -> None:
    """Send the notification recorded as NotificationLog `log_id`.

    The channels (SMTP, SMS/Telegram gateways) arrive with the jobs issue; until
    then the row stays "queued", which is exactly what it records.
    """
    return None
