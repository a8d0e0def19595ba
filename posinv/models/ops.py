"""Operational records: API tokens, job runs, schedule states and leases."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A bearer token for a staff user or a device (register, cabinet, store).
    Only a SHA-256 of the token is stored; the token is shown once. One
    token per subject: issuing a new one rotates the old one out."""

    class Kind(models.TextChoices):
        USER = "user", "Staff user"
        REGISTER = "register", "Cash register"
        CABINET = "cabinet", "Weighing cabinet"
        STORE = "store", "External store"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=150, help_text="username or device code")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="first characters, to recognise a token")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject"], name="token_one_per_subject")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.subject} ({self.prefix}…)"


class JobRun(models.Model):
    """One run of a background job: what, for whom, when, outcome and log."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (lease held elsewhere)"
        HELD = "held", "Held: waits for a person"

    name = models.CharField(max_length=120, db_index=True)
    subject = models.CharField(max_length=120, blank=True, db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Liveness (posinv/heartbeat.py): the process running it ("host:pid")
    # stamps heartbeat_at every POSINV_HEARTBEAT_SECONDS while it runs, so a
    # run whose process was killed is found and marked failed instead of
    # staying "running" forever.
    process = models.CharField(max_length=120, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            # The dead-run sweep and the health check read only running rows.
            models.Index(fields=["heartbeat_at"], condition=models.Q(status="running"),
                         name="jobrun_running_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.name}({self.subject}) {self.status}"


class ScheduleState(models.Model):
    """Where one scheduled job stands (a store's stock run, a cabinet's
    pull, ...): when it last ran and how that ended. The scheduler decides
    from this alone when the job is due next (posinv.scheduling.schedule_due_at):
    after a success its interval, after failures the interval with
    exponential backoff, and never while it is held for a person."""

    class Outcome(models.TextChoices):
        NONE = "", "Not run yet"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        HELD = "held", "Held: waits for a person"

    key = models.CharField(max_length=160, unique=True, help_text="The scheduler's key, e.g. store-stock:SHOP1.")
    job = models.CharField(max_length=120, help_text="The job run name it records (Admin → Job runs).")
    subject = models.CharField(max_length=120, blank=True)
    interval_seconds = models.FloatField(default=0, help_text="The interval the scheduler last offered it with.")
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.NONE, blank=True)
    failures_in_row = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    held_since = models.DateTimeField(
        null=True, blank=True, help_text="Set while the run waits for a person; it is not retried meanwhile."
    )
    held_reason = models.TextField(blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="The peer asked us (Retry-After) not to call before this time."
    )
    skipped_runs = models.PositiveIntegerField(
        default=0, help_text="Runs skipped since the last real run because another worker held the lease."
    )
    last_skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]
        indexes = [models.Index(fields=["job", "subject"], name="schedule_job_subject_idx")]
        permissions = [("release_schedulestate", "Can release a held or backed-off schedule")]

    def __str__(self) -> str:
        return self.key


class Lease(models.Model):
    """Exclusive right to work on one object (a register's sync, a store's
    pull) until `expires_at`, so two workers never sync the same thing."""

    key = models.CharField(max_length=160, unique=True)
    holder = models.CharField(max_length=120)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} held by {self.holder}"
