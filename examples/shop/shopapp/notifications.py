"""Customer e-mails through a transactional outbox.

The services write an ``outbox`` row in the same transaction as the order change it reports; a
`Notifier` — a background thread, like a job-queue worker — polls for unsent rows (every 200 ms
by default), hands each to a `Mailer` and marks it sent. Rows are claimed with ``FOR UPDATE SKIP
LOCKED``, so several notifiers (threads or processes) never send one message twice. A failed send
is retried on a later poll, up to ``max_attempts``; then the row stays unsent with its last error
(a dead letter).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, text

from shopapp.audit import AuditLog

SUBJECTS = {
    "order_confirmation": "Order #{id} confirmed",
    "order_shipped": "Order #{id} is on its way",
    "order_cancelled": "Order #{id} cancelled",
}


class MailError(Exception):
    """A transient delivery failure (the message is retried)."""


@dataclass(frozen=True)
class Email:
    recipient: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


class MemoryMailer:
    """Keeps what it "sends"; fails the first `fail_first` sends (a flaky SMTP server)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[Email] = []
        self.failures_left = fail_first
        self._lock = threading.Lock()

    def send(self, email: Email) -> None:
        with self._lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                raise MailError("451 4.3.0 temporary failure, try again later")
            self.sent.append(email)


_CLAIM = text(
    "SELECT m.id, m.kind, m.order_id, m.recipient, o.total_cents"
    "  FROM outbox m JOIN orders o ON o.id = m.order_id"
    " WHERE m.sent_at IS NULL AND m.attempts < :max_attempts"
    " ORDER BY m.id LIMIT :batch FOR UPDATE OF m SKIP LOCKED"
)
_SENT = text(
    "UPDATE outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 WHERE id = :id"
)
_FAILED = text("UPDATE outbox SET attempts = attempts + 1, last_error = :error WHERE id = :id")


class Notifier:
    def __init__(
        self,
        engine: Engine,
        mailer: Mailer,
        audit_factory: Callable[[], AuditLog],
        *,
        interval: float = 0.2,
        batch: int = 10,
        max_attempts: int = 3,
        name: str = "notifier",
    ) -> None:
        self.engine = engine
        self.mailer = mailer
        self.audit_factory = audit_factory
        self.interval = interval
        self.batch = batch
        self.max_attempts = max_attempts
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    # -- one round ------------------------------------------------------------------------------

    def run_once(self, audit: AuditLog) -> tuple[int, int]:
        """Claims and sends one batch; (sent, failed)."""
        sent: list[tuple[int, int, str]] = []
        failed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(
                _CLAIM, {"max_attempts": self.max_attempts, "batch": self.batch}
            ).all()
            for mid, kind, order_id, recipient, total in rows:
                subject = SUBJECTS.get(kind, "Order #{id}").format(id=order_id)
                body = f"{subject}. Total: {total / 100:.2f} EUR."
                try:
                    self.mailer.send(Email(recipient, subject, body))
                except MailError as exc:
                    conn.execute(_FAILED, {"id": mid, "error": str(exc)})
                    failed += 1
                else:
                    conn.execute(_SENT, {"id": mid})
                    sent.append((mid, order_id, kind))
            # Audited before the rows are marked sent (committed): whoever sees a message
            # delivered also finds it in the audit log.
            if sent:
                audit.record_many(
                    [
                        ("notification.sent", "order", order_id, {"outbox_id": mid, "kind": kind})
                        for mid, order_id, kind in sent
                    ]
                )
        return len(sent), failed

    def pending(self) -> int:
        """Messages still to deliver (dead letters excluded)."""
        with self.engine.connect() as conn:
            n = conn.scalar(
                text("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND attempts < :m"),
                {"m": self.max_attempts},
            )
        return int(n or 0)

    # -- the background thread ------------------------------------------------------------------

    def start(self) -> Notifier:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        with self.audit_factory() as audit:
            while not self._stop.is_set():
                try:
                    sent, _failed = self.run_once(audit)
                except Exception as exc:  # keep polling; the error is kept for the owner
                    self.errors.append(exc)
                    sent = 0
                if sent == 0:
                    self._stop.wait(self.interval)

    def wait_until_delivered(self, timeout: float = 15.0) -> None:
        """Blocks until no message is pending (polling like any client of a job queue)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.pending()} messages still pending after {timeout}s")
            time.sleep(self.interval)
