"""Aufträge: the Owner's job monitor (issue 6, point 8) on RQ's own registries
(app/jobs/monitor.py): queues and their counts, workers, the `rq cron` schedulers with
their cron jobs, running, failed (with traceback) and scheduled jobs.

"Erneut versuchen" (one failed job, or all of a queue) and "Löschen" (a failed job,
after a confirmation page) are POSTs (CSRF); a POST naming nothing re-renders the page
with a German error (200), a malformed job id answers 400. Without `REDIS_URL` the page
says so: the jobs then run inside the web process and there is nothing to monitor.
Owner only (app/security.py declares it for no other role)."""
from __future__ import annotations

from datetime import datetime

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from redis.exceptions import RedisError

from app.formatting import fmt_datetime
from app.jobs import monitor
from app.jobs.queue import QUEUES, redis_connection

WORKER_STATES = {
    "starting": _l("startet"),
    "started": _l("gestartet"),
    "idle": _l("wartet auf Aufträge"),
    "busy": _l("arbeitet"),
    "suspended": _l("angehalten"),
}


def fmt_time(value: datetime | None) -> str:
    return fmt_datetime(value) if value is not None else "–"


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return _("vor %(count)d s", count=seconds)
    if seconds < 2 * 3600:
        return _("vor %(count)d min", count=seconds // 60)
    return _("vor %(count)d h", count=seconds // 3600)


def worker_state(state: str) -> str:
    return str(WORKER_STATES.get(state, state))


def schedule_text(job: monitor.CronJobInfo) -> str:
    if job.cron:
        return job.cron
    return _("alle %(seconds)d s", seconds=job.interval or 0)


class JobMonitorView(BaseView):
    """Aufträge (Owner)."""

    route_base = "/auftraege"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        return self.render_monitor()

    def render_monitor(self, error: str | None = None):
        connection = redis_connection()
        context = {"configured": connection is not None, "overview": None, "unreachable": False, "error": error}
        if connection is not None:
            try:
                context["overview"] = monitor.overview(connection)
            except RedisError:
                context["unreachable"] = True
        return self.render_template(
            "terminbuch/job_monitor.html", fmt_time=fmt_time, fmt_age=fmt_age, worker_state=worker_state,
            schedule_text=schedule_text, args_shown=monitor.ARGS_SHOWN, jobs_shown=monitor.JOBS_SHOWN,
            **context,
        )

    def _job_id(self) -> str | None:
        """The form's job id: None when none is given, 400 when it cannot be an RQ job id."""
        value = request.form.get("job_id", "").strip()
        if not value:
            return None
        if not monitor.valid_job_id(value):
            abort(400)
        return value

    def _back(self):
        return redirect(url_for(f"{self.endpoint}.index"))

    def _failed_job_form(self):
        """(connection, job id, None) for a retry/delete form, or (None, None, the page to answer):
        no Redis → the page; no job chosen → the page with the German reason."""
        job_id = self._job_id()
        connection = redis_connection()
        if connection is None:
            return None, None, self.render_monitor()
        if job_id is None:
            return None, None, self.render_monitor(error=_("Bitte einen fehlgeschlagenen Auftrag wählen."))
        return connection, job_id, None

    def _not_failed(self, job_id: str):
        flash(_("Der Auftrag %(id)s ist kein fehlgeschlagener Auftrag (mehr).", id=job_id), "warning")
        return self._back()

    @expose("/retry/", methods=["POST"])
    @has_access
    def retry(self):
        connection, job_id, answer = self._failed_job_form()
        if answer is not None:
            return answer
        try:
            job = monitor.retry_failed(connection, job_id)
        except RedisError:
            return self.render_monitor()
        if job is None:
            return self._not_failed(job_id)
        flash(_("Auftrag %(id)s wird erneut versucht (Warteschlange %(queue)s).", id=job_id, queue=job.origin),
              "success")
        return self._back()

    @expose("/retry-all/", methods=["POST"])
    @has_access
    def retry_all(self):
        name = request.form.get("queue", "").strip()
        connection = redis_connection()
        if connection is None:
            return self.render_monitor()
        if name not in QUEUES:
            return self.render_monitor(error=_("Bitte eine Warteschlange wählen."))
        try:
            count = monitor.retry_all_failed(connection, name)
        except RedisError:
            return self.render_monitor()
        if count:
            flash(_("Fehlgeschlagene Aufträge der Warteschlange %(queue)s erneut eingereiht: %(count)d.",
                    count=count, queue=name), "success")
        else:
            flash(_("Die Warteschlange %(queue)s hat keine fehlgeschlagenen Aufträge.", queue=name), "info")
        return self._back()

    @expose("/delete/", methods=["POST"])
    @has_access
    def delete(self):
        """Without `confirm=1`: the confirmation page (nothing deleted); with it: delete."""
        connection, job_id, answer = self._failed_job_form()
        if answer is not None:
            return answer
        try:
            job = monitor.failed_job(connection, job_id)
            if job is None:
                return self._not_failed(job_id)
            if request.form.get("confirm") != "1":
                return self.render_template("terminbuch/job_monitor_delete.html", job=monitor.job_info(job),
                                            fmt_time=fmt_time)
            deleted = monitor.delete_failed(connection, job_id)
        except RedisError:
            return self.render_monitor()
        if not deleted:
            return self._not_failed(job_id)
        flash(_("Auftrag %(id)s gelöscht.", id=job_id), "success")
        return self._back()
