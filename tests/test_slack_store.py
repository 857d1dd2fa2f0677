"""The incident store on SQLite and on the real PostgreSQL: one active incident per channel even
under concurrent opens, the timeline's keys, event claims, conversation threads, and durability
across a reopen (a restart)."""

from __future__ import annotations

import time

import threading
from pathlib import Path

import pytest

from bot.config import StorageConfig
from bot.incidents.store import IncidentStore
from bot.slack.claims import WorkClaims




def test_one_active_incident_per_channel_under_concurrent_opens(storage):
    store = IncidentStore(storage)
    results = []
    barrier = threading.Barrier(8)

    def open_one(n: int) -> None:
        barrier.wait()
        results.append(store.open_incident(team="T", channel="C1", title=f"title {n}", opened_by=f"U{n}"))

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for _, opened in results if opened) == 1
    assert len({incident.id for incident, _ in results}) == 1
    incident = results[0][0]
    assert [e.kind for e in store.timeline(incident.id)] == ["opened"]
    assert incident.commander == incident.opened_by  # whoever opens it commands until told otherwise

    store.update(incident.id, status="resolved", resolved_at=1.0)
    again, opened = store.open_incident(team="T", channel="C1", title="second", opened_by="U9", severity=1)
    assert opened and again.id != incident.id and again.severity == 1
    assert store.latest_incident(team="T", channel="C1").id == again.id
    store.close()


def test_timeline_keys_claims_threads_and_a_reopen(storage):
    store = IncidentStore(storage)
    claims = WorkClaims(storage)
    a, _ = store.open_incident(team="T", channel="C1", title="a", opened_by="U1", severity=3)
    b, _ = store.open_incident(team="T", channel="C2", title="b", opened_by="U2", severity=1)
    assert store.add_entry(a.id, kind="manual", text="flagged", key="msg:C1:1.1", via="reaction", at=5.0)
    assert store.add_entry(a.id, kind="manual", text="flagged again", key="msg:C1:1.1", via="pin") is None
    assert store.add_entry(a.id, kind="change", text="deploy", key="change:chg-1", at=4.0)
    assert not store.remove_entry(a.id, key="change:chg-1", via="reaction")
    assert claims.claim_work("event:Ev1", {"n": 1}, owner="p1") and not claims.claim_work("event:Ev1", {}, owner="p2")
    assert claims.claim_work("event:Ev2", {"n": 2}, owner="p1")
    claims.finish_work("event:Ev2")
    store.remember_thread(thread_id="T:C1:1.0", team="T", channel="C1", thread_ts="1.0", incident_id=a.id)
    store.add_thread_charts("T:C1:1.0", ["01.png"])
    store.update(a.id, diagnosis={"hypotheses": [{"category": "code_change"}]}, top="code_change:checkout")
    assert [i.id for i in store.active_incidents(team="T")] == [b.id, a.id]  # by severity, then age
    store.close()
    claims.close()

    reopened = IncidentStore(storage)  # a restart
    reclaims = WorkClaims(storage)
    assert not reclaims.claim_work("event:Ev1", {}, owner="p2")  # p1 beat moments ago: maybe still alive
    assert not reclaims.claim_work("event:Ev2", {}, owner="p2", stale_after=0)  # done is done
    assert [e.text for e in reopened.timeline(a.id)] == ["deploy", "flagged", "Incident opened: a (SEV3)"]
    assert reopened.remove_entry(a.id, key="msg:C1:1.1", via="reaction")
    assert [e.kind for e in reopened.timeline(a.id)] == ["change", "opened"]
    thread = reopened.thread("T:C1:1.0")
    assert thread.incident_id == a.id and thread.charts == ["01.png"]
    assert reopened.get(a.id).diagnosis == {"hypotheses": [{"category": "code_change"}]}
    assert reopened.set_if_empty(a.id, "summary_ts", "9.9") and not reopened.set_if_empty(a.id, "summary_ts", "9.8")
    reopened.close()
    reclaims.close()


def test_a_bad_prefix_and_an_unreachable_postgres_say_why(tmp_path: Path):
    with pytest.raises(ValueError):
        IncidentStore(StorageConfig(sqlite=tmp_path / "s.db"), prefix="x; drop")
    from bot.incidents.database import StoreError

    with pytest.raises(StoreError) as caught:
        IncidentStore(StorageConfig(sqlite=tmp_path / "s.db", postgres="postgresql://nobody@127.0.0.1:1/none"))
    assert "storage.postgres" in str(caught.value)


def test_claimed_work_is_taken_over_only_when_its_owner_stops_beating(storage):
    claims = WorkClaims(storage)
    try:
        assert claims.claim_work("command:T1", {"text": "checkout 500s"}, owner="dead")
        assert claims.claim_work("command:T2", {"text": "search slow"}, owner="alive")
        assert claims.claim_work("command:T3", {"text": "done"}, owner="dead")
        claims.finish_work("command:T3")
        time.sleep(0.3)
        assert claims.heartbeat("alive") == 1
        stale = claims.stale_work(stale_after=0.2)
        assert [(w.key, w.body, w.attempts) for w in stale] == [("command:T1", {"text": "checkout 500s"}, 1)]
        assert not claims.claim_work("command:T2", {}, owner="late", stale_after=0.2), "a live owner keeps its work"
        # Two processes race for the dead owner's work: exactly one wins.
        winners = [claims.take_over("command:T1", owner=name, stale_after=0.2) for name in ("p1", "p2")]
        assert winners == [True, False]
        assert claims.stale_work(stale_after=0.2) == []
        time.sleep(0.3)
        assert claims.claim_work("command:T1", {}, owner="p3", stale_after=0.2), "a redelivery takes over too"
        assert claims.stale_work(stale_after=0.0, newer_than_s=0.0) == [], "old work is left to lie"
        claims.give_up_work("command:T1")
        assert claims.work_state("command:T1") == "abandoned" and claims.work_state("command:T3") == "done"
    finally:
        claims.close()
