"""The MySQL repositories on a real MariaDB, in the run's throwaway database."""

import uuid
from datetime import timedelta

import pytest

from core.adapters.mysql.db import MySQLDatabase
from core.adapters.mysql.migrations import load
from core.domain.accounts import NewUser, Role
from core.domain.errors import Conflict, Unavailable
from core.domain.jobs import Job, JobStatus
from core.domain.values import utcnow
from core.observability import bind


@pytest.fixture
def owner(container):
    suffix = uuid.uuid4().hex[:8]
    return container.user_repo.add(
        NewUser(
            name=f"owner-{suffix}", email=f"{suffix}@example.com", password_hash="$argon2id$fake"
        )
    )


def new_job(container, owner, **fields):
    job = Job(
        id=uuid.uuid4().hex,
        owner_id=owner.id,
        status=JobStatus.QUEUED,
        video_fid="f" * 32,
        video_filename="clip.mp4",
        video_size=123,
        **fields,
    )
    return container.job_repo.add(job)


def test_migrations_run_once(container):
    from tests.support.config import migrate

    migrate(container.settings)  # again: nothing to apply
    with container.db.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [row["version"] for row in cur.fetchall()] == [m.version for m in load()]


def test_a_job_keeps_the_request_id_it_was_uploaded_with(container, owner):
    bind(request_id="upload-req-1")
    try:
        job = new_job(container, owner)
    finally:
        bind()
    assert job.request_id == "upload-req-1"
    assert container.job_repo.get(job.id).request_id == "upload-req-1"
    assert new_job(container, owner).request_id is None  # no request: nothing invented


def test_sql_metacharacters_are_data(container):
    name = "x'; DROP TABLE users; --"
    user = container.user_repo.add(
        NewUser(name=name, email="meta@example.com", password_hash="h", role=Role.USER)
    )
    assert container.user_repo.get_by_name(name).id == user.id
    assert container.user_repo.get_by_name("' OR '1'='1") is None


def test_unique_name_and_email(container, owner):
    with pytest.raises(Conflict, match="name"):
        container.user_repo.add(NewUser(name=owner.name, email="x@example.com", password_hash="h"))
    with pytest.raises(Conflict, match="email"):
        container.user_repo.add(NewUser(name="another", email=owner.email, password_hash="h"))


def test_an_email_changes_only_by_confirmation(container, owner):
    users = container.user_repo
    with pytest.raises(ValueError):
        users.update(owner.id, {"email": "direct@example.org"})
    new = f"moved-{owner.email}"
    assert not users.confirm_email(owner.id, new)  # nobody asked for it
    users.update(owner.id, {"pending_email": new})
    assert users.get(owner.id).pending_email == new
    assert users.confirm_email(owner.id, new)
    moved = users.get(owner.id)
    assert (moved.email, moved.pending_email, moved.email_confirmed) == (new, None, True)
    assert not users.confirm_email(owner.id, new)  # once
    signed_up = users.add(
        NewUser(
            name=f"s-{owner.name}",
            email=f"s-{owner.email}",
            password_hash="h",
            email_confirmed=False,
        )
    )
    assert not users.get(signed_up.id).email_confirmed
    users.update(signed_up.id, {"pending_email": new})
    with pytest.raises(Conflict, match="email"):  # taken meanwhile
        users.confirm_email(signed_up.id, new)
    assert users.confirm_email(signed_up.id, signed_up.email)  # its own, unconfirmed address
    assert users.get(signed_up.id).email_confirmed


def test_job_update_respects_expected_status(container, owner):
    job = new_job(container, owner)
    repo = container.job_repo
    assert repo.update(job.id, {"status": JobStatus.CONVERTING}, only_if_status=(JobStatus.QUEUED,))
    assert not repo.update(job.id, {"status": JobStatus.DONE}, only_if_status=(JobStatus.QUEUED,))
    assert repo.get(job.id).status is JobStatus.CONVERTING


def test_stale_and_listing(container, owner):
    first, second = new_job(container, owner), new_job(container, owner)
    jobs, total = container.job_repo.list_for_owner(owner.id, 0, 10)
    assert total == 2 and [j.id for j in jobs] == [second.id, first.id]
    future = utcnow() + timedelta(seconds=5)
    stale_ids = {j.id for j in container.job_sweeps.stale((JobStatus.QUEUED,), future)}
    assert {first.id, second.id} <= stale_ids


def test_deleting_a_user_deletes_their_job_rows(container, owner):
    job = new_job(container, owner)
    container.user_repo.delete(owner.id)
    assert container.job_repo.get(job.id) is None


def test_unreachable_server_is_unavailable():
    db = MySQLDatabase("127.0.0.1", 1, "root", "", "nowhere", connect_timeout=1)
    with pytest.raises(Unavailable):
        db.ping()


def test_unannounced_finds_ended_jobs_whose_event_was_never_emitted(container, owner):
    from core.domain.webhooks import WebhookDelivery, WebhookEndpoint

    hooks = container.webhook_repo
    endpoint = hooks.add_endpoint(
        WebhookEndpoint(
            id=uuid.uuid4().hex,
            owner_id=owner.id,
            url="https://receiver.example/hook",
            events=["job.succeeded", "job.failed"],
            secret="whsec_x",
        )
    )

    def ended(status):
        job = new_job(container, owner)
        container.job_repo.update(job.id, {"status": status, "finished_at": utcnow()})
        return job.id

    failed, done, cancelled, announced = (
        ended(JobStatus.FAILED),
        ended(JobStatus.DONE),
        ended(JobStatus.CANCELLED),  # not subscribed
        ended(JobStatus.DONE),
    )
    new_job(container, owner)  # still queued: nothing to announce
    hooks.add_delivery(
        WebhookDelivery(
            id=uuid.uuid4().hex,
            endpoint_id=endpoint.id,
            job_id=announced,
            event="job.succeeded",
            body="{}",
        )
    )
    window = (utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1))
    found = set(hooks.unannounced(*window))
    assert found == {(failed, "job.failed"), (done, "job.succeeded")}, (cancelled, found)
    assert hooks.unannounced(utcnow() + timedelta(minutes=1), utcnow() + timedelta(hours=1)) == []
    hooks.disable_endpoint(endpoint.id)
    assert hooks.unannounced(*window) == []


def test_one_email_sender_at_a_time(container, owner):
    jobs, claims = container.job_repo, container.email_claims
    job = new_job(container, owner)
    now = utcnow()
    soon = now + timedelta(minutes=5)
    assert not claims.claim_notification(job.id, "a", soon, now)  # not done yet: nothing to send
    jobs.update(job.id, {"status": JobStatus.DONE, "finished_at": now - timedelta(hours=1)})
    assert [j.id for j in claims.unsent(now, now) if j.id == job.id] == [job.id]
    assert claims.claim_notification(job.id, "a", soon, now)
    assert claims.claim_notification(job.id, "a", soon, now)  # the holder again (a retry)
    assert not claims.claim_notification(job.id, "b", soon, now)  # another, while it runs
    assert job.id not in {j.id for j in claims.unsent(now, now)}
    later = soon + timedelta(seconds=1)
    assert job.id in {j.id for j in claims.unsent(later, later)}  # the claim ran out
    assert claims.claim_notification(job.id, "b", later + timedelta(minutes=5), later)
    jobs.update(job.id, {"notified_at": later})
    assert not claims.claim_notification(job.id, "b", later + timedelta(minutes=5), later)
    assert job.id not in {j.id for j in claims.unsent(later, later)}


def test_an_attempt_known_dead_is_taken_over_only_while_it_still_holds(container, owner):
    jobs, leases = container.job_repo, container.job_leases
    job = new_job(container, owner)
    now = utcnow()
    later = now + timedelta(minutes=1)
    assert leases.claim(job.id, "a" * 32, later, now, "host:1:1")
    assert jobs.get(job.id).lease_holder == "host:1:1"
    assert not leases.take_over(job.id, "x" * 32, "b" * 32, later, "host:2:2")  # not the holder
    assert leases.take_over(job.id, "a" * 32, "b" * 32, later, "host:2:2")
    taken = jobs.get(job.id)
    assert taken.lease_id == "b" * 32 and taken.lease_holder == "host:2:2" and taken.attempts == 2
    assert not leases.take_over(job.id, "a" * 32, "c" * 32, later, "host:3:3")  # already taken


# --- the driver ------------------------------------------------------------------------------


def test_the_driver_is_the_c_extension(container):
    """mysqlclient's C module does the protocol: a dependency change cannot quietly swap in a
    pure-Python one (mysql-connector's C extension does not load on Debian 12's OpenSSL)."""
    import importlib.machinery

    import MySQLdb._mysql

    from core.adapters.mysql import db as mysql_db

    assert mysql_db.DRIVER is MySQLdb._mysql
    assert MySQLdb._mysql.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    with container.db.connection() as cnx:
        assert isinstance(cnx, MySQLdb._mysql.connection)


@pytest.fixture
def counted_db(settings):
    from tests.support.mysql_wire import CommandCounter

    counter = CommandCounter(settings.mysql_host, settings.mysql_port).up()
    db = MySQLDatabase(
        "127.0.0.1",
        counter.port,
        settings.mysql_user,
        settings.mysql_password,
        settings.mysql_database,
        pool_size=2,
    )
    yield db, counter
    db.close()
    counter.down()


def test_a_job_read_is_one_round_trip(counted_db, container, owner):
    """A connection used a moment ago is lent without a ping: one statement, one round trip."""
    from core.adapters.mysql.jobs import MySQLJobRepository

    db, counter = counted_db
    repo = MySQLJobRepository(db)
    job = new_job(container, owner)
    assert repo.get(job.id).id == job.id  # connects: the handshake's own commands
    before = counter.snapshot()
    for _ in range(10):
        assert repo.get(job.id).status is JobStatus.QUEUED
    spent = counter.snapshot() - before
    assert spent == {"query": 10}, spent


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(counted_db, container, owner):
    from core.adapters.mysql import db as mysql_db
    from core.adapters.mysql.jobs import MySQLJobRepository

    db, counter = counted_db
    repo = MySQLJobRepository(db)
    job = new_job(container, owner)
    assert repo.get(job.id) is not None
    fresh, mysql_db.FRESH_SECONDS = mysql_db.FRESH_SECONDS, -1.0  # everything counts as idle
    try:
        before = counter.snapshot()
        assert repo.get(job.id) is not None
        assert counter.snapshot() - before == {"ping": 1, "query": 1}
        counter.down()  # the server goes away under the idle connection
        counter.up()
        assert repo.get(job.id) is not None  # the ping fails: a new connection answers
    finally:
        mysql_db.FRESH_SECONDS = fresh


def test_after_a_cut_the_pooled_connections_are_replaced_unseen(counted_db, container, owner):
    """The link to the server is cut (a restart, a proxy): the pooled connections see the
    close, and the next reads get new ones without a single error."""
    from core.adapters.mysql.jobs import MySQLJobRepository

    db, counter = counted_db
    repo = MySQLJobRepository(db)
    job = new_job(container, owner)
    with db.connection():  # two connections in the pool
        assert repo.get(job.id) is not None
    counter.down()
    counter.up()
    for _ in range(3):
        assert repo.get(job.id) is not None


def test_a_connection_the_server_closed_while_idle_is_not_lent(container, owner, settings):
    """KILL (as wait_timeout, a restart or a proxy would) between two uses, within the time a
    connection is lent without a ping: the next read gets a new connection, not an error."""
    import MySQLdb

    from core.adapters.mysql.jobs import MySQLJobRepository

    db = MySQLDatabase(
        settings.mysql_host,
        settings.mysql_port,
        settings.mysql_user,
        settings.mysql_password,
        settings.mysql_database,
        pool_size=1,
    )
    try:
        repo = MySQLJobRepository(db)
        job = new_job(container, owner)
        with db.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID() AS id")
            victim = cur.fetchone()["id"]
        admin = MySQLdb.connect(
            host=settings.mysql_host,
            port=settings.mysql_port,
            user=settings.mysql_user,
            password=settings.mysql_password,
        )
        try:
            admin.cursor().execute(f"KILL {int(victim)}")
        finally:
            admin.close()
        assert repo.get(job.id).id == job.id
        with db.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID() AS id")
            assert cur.fetchone()["id"] != victim
    finally:
        db.close()
