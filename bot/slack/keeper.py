"""The WorkKeeper (heartbeats, due retries, replays of a dead process's work) and the graceful stop (drain)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_bolt import App, BoltRequest

from bot.incidents.text import duration
from bot.slack.claims import REPLAY_ATTEMPTS
from bot.slack.errors import undelivered, why as why_failed
from bot.slack.guard import REPLAYED, backoff_s, what_of, where_from
from bot.slack.mrkdwn import MAX_FALLBACK, clip, sections, when
from bot.slack.sleuth import Sleuth

log = logging.getLogger("sleuth.slack")


class WorkKeeper:
    """Beats for this process's claimed work, runs work that is due again, and replays work whose
    process died.

    Every ``interval`` seconds (``slack.sweep_interval_s``; by default a quarter of
    ``takeover_after_s``, between 1 and 5 s): refresh this process's claims; tell the channel about
    work given up after ``slack.delivery_deadline_s`` (once Slack answers again); take and
    dispatch again work that Slack did not take and whose retry is due (or that a stopping
    process handed back); and take over and dispatch again (as Socket Mode would, past signature
    checks: the body was verified when it first arrived) any claim that stopped beating
    ``stale_after`` seconds ago. Work that already killed its process ``REPLAY_ATTEMPTS`` times is
    given up with a log line rather than replayed forever. The work's note makes each replay
    resume where the last run stopped.
    """

    def __init__(self, app: App, sleuth: Sleuth, *, interval: float | None = None) -> None:
        self.app, self.sleuth = app, sleuth
        settings = sleuth.config.slack
        self.stale_after = settings.takeover_after_s
        self.interval = interval or settings.sweep_interval_s or max(1.0, min(5.0, self.stale_after / 4))
        self.attempts = REPLAY_ATTEMPTS
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        self.sleuth.claims.heartbeat(self.sleuth.owner)

    def pause(self) -> None:
        """Take no more work (a stopping process); keep beating for the work still running."""
        self._paused.set()

    def sweep(self) -> list[str]:
        """Tell what was given up, run due retries, replay stale work, once; the keys dispatched."""
        if self._paused.is_set():
            return []
        claims, settings = self.sleuth.claims, self.sleuth.config.slack
        for work in claims.due_work(state="failed"):
            self._tell_given_up(work)
        dispatched = []
        for work in claims.due_work(state="retry"):
            if self._paused.is_set():
                break
            # Work Slack did not take has until the delivery deadline; work a stopping process handed
            # back (no error) has as long as a crashed process's work would (an hour at least).
            limit = settings.delivery_deadline_s if work.last_error else max(3600.0, settings.delivery_deadline_s)
            if time.time() >= work.received_at + limit:
                log.error("giving up %s: not delivered within %.0f s (%s); the channel will be told",
                          work.key, limit, work.last_error or "handed back by stopping processes")
                if claims.fail_work(work.key, error=work.last_error or "Slack did not answer"):
                    found = claims.work(work.key)
                    if found is not None:
                        self._tell_given_up(found)
                continue
            if not claims.take_due(work.key, owner=self.sleuth.owner):
                continue  # another process took it first
            log.warning("trying %s again (%d earlier tries Slack did not take; last: %s)", work.key, work.tries,
                        work.last_error or "handed back by a stopping process")
            self._dispatch(work.body)
            dispatched.append(work.key)
        newer_than = max(3600.0, settings.delivery_deadline_s)
        for work in claims.stale_work(stale_after=self.stale_after, newer_than_s=newer_than):
            if self._paused.is_set():
                break
            if work.attempts >= self.attempts:
                log.error("giving up %s: it was started %d times and never finished", work.key, work.attempts)
                claims.give_up_work(work.key)
                continue
            if not claims.take_over(work.key, owner=self.sleuth.owner, stale_after=self.stale_after):
                continue  # another process took it first
            log.warning("replaying %s: the process that claimed it stopped before finishing", work.key)
            self._dispatch(work.body)
            dispatched.append(work.key)
        return dispatched

    def _dispatch(self, body: dict[str, Any]) -> None:
        self.app.dispatch(BoltRequest(body=body, mode="socket_mode", context={REPLAYED: True}))

    def _tell_given_up(self, work: Any) -> None:
        """Say in the channel that a piece of work was given up; until Slack takes the message, it
        is tried again with the same backoff (and for at most a day)."""
        claims, settings = self.sleuth.claims, self.sleuth.config.slack
        now = time.time()
        channel, _, thread_ts = where_from(work.body)
        if not channel or now > work.received_at + settings.delivery_deadline_s + 86400:
            claims.give_up_work(work.key)
            return
        again = now + backoff_s(work.tries + 1, initial=settings.retry_backoff_s,
                                maximum=settings.retry_backoff_max_s)
        if not claims.take_notice(work.key, again_at=again):
            return  # another process is telling it
        why = "Slack could not be reached" if work.last_error else "Sleuth was restarting"
        text = (f":warning: {why}, so Sleuth gave up on {what_of(work.body)} from "
                f"{when(work.received_at)} after trying for {duration(now - work.received_at)}. "
                "Please run it again.")
        try:
            self.app.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=clip(text, MAX_FALLBACK),
                                             blocks=sections(text))
        except Exception as exc:  # noqa: BLE001 - still down: told on a later sweep
            if undelivered(exc):
                log.warning("could not yet tell %s that %s was given up: %s", channel, work.key, why_failed(exc))
                return
            log.error("cannot tell %s that %s was given up: %s", channel, work.key, why_failed(exc))
        claims.give_up_work(work.key)  # told (or it never can be)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                self.sweep()
            except Exception:  # noqa: BLE001 - a store outage must not kill the keeper; next beat retries
                log.exception("the work keeper could not reach the store")
            self._stop.wait(self.interval)

    def start(self) -> "WorkKeeper":
        self._thread = threading.Thread(target=self._run, name="sleuth-work-keeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def drain(sleuth: Sleuth, keeper: WorkKeeper | None, grace_s: float) -> list[str]:
    """A graceful stop, once no more requests arrive: no work starts here any more, running work
    gets ``grace_s`` seconds to finish (the keeper still beats for it), then every claim of this
    process that is not done (still running, or queued and never started) is handed back, due at
    once for another process, its note intact so that it resumes. The keys still running."""
    if keeper is not None:
        keeper.pause()
    sleuth.in_flight.stop()
    running = sleuth.in_flight.wait(grace_s)
    handed = sleuth.claims.release_work(sleuth.owner)
    if running:
        log.warning("stopping with %d pieces of work still running after %.0f s (%s): handed back for another "
                    "process to resume", len(running), grace_s, ", ".join(running))
    elif handed:
        log.warning("stopping: %d claimed pieces of work that never started are handed back", handed)
    return running
