import pytest

from core.domain.errors import InvalidInput, NotFound, TooLarge


def test_put_adds_last_updated_and_default_ttl(items):
    stored, created = items.put(1, "prefs/theme", {"color": "blue"}, now=1000)
    assert created and stored == {"color": "blue", "last_updated": 1000, "ttl": 365 * 24 * 3600}
    again, created = items.put(1, "prefs/theme", {"color": "red"}, ttl=60)
    assert not created and again["ttl"] == 60
    read = items.get(1, "prefs/theme")
    assert read["color"] == "red" and 0 < read["ttl"] <= 60


def test_owners_do_not_share_items(items):
    items.put(1, "k", {"secret": 1})
    with pytest.raises(NotFound):
        items.get(2, "k")


@pytest.mark.parametrize(
    "key",
    [
        "..",
        "a/../b",
        "a/./b",
        "*",
        "a*b",
        "a?",
        "has space",
        "new\nline",
        "",
        "/lead",
        "trail/",
        "a//b",
        "x" * 201,
    ],
)
def test_unsafe_keys_are_refused(items, key):
    with pytest.raises(InvalidInput):
        items.put(1, key, {"v": 1})
    assert items.store.values == {}


@pytest.mark.parametrize("value", [[1, 2], "text", 3, None])
def test_only_objects_are_stored(items, value):
    with pytest.raises(InvalidInput):
        items.put(1, "k", value)
    assert items.store.values == {}


@pytest.mark.parametrize("ttl", [0, -1, 10 * 365 * 24 * 3600 + 1])
def test_ttl_must_be_sane(items, ttl):
    with pytest.raises(InvalidInput):
        items.put(1, "k", {"v": 1}, ttl=ttl)
    assert items.store.values == {}


def test_items_are_size_capped(items):
    with pytest.raises(TooLarge):
        items.put(1, "k", {"v": "x" * 2000})
    with pytest.raises(NotFound):
        items.get(1, "k")


def test_expired_items_are_gone(items):
    items.put(1, "k", {"v": 1}, ttl=5)
    store = items.store
    store.now = lambda: __import__("time").time() + 10
    with pytest.raises(NotFound):
        items.get(1, "k")


def test_delete_missing_is_not_found(items):
    with pytest.raises(NotFound):
        items.delete(1, "k")


def test_hits_grow_by_one(items):
    assert [items.hit(), items.hit(), items.hit()] == [1, 2, 3]


def test_the_byte_quota_counts_each_owner_separately():
    from core.domain.errors import QuotaExceeded
    from core.services.items import ItemService
    from tests.support.fakes import FakeItems

    service = ItemService(FakeItems(), 3600, max_bytes=1000, max_items=100, quota_bytes=1000)
    service.put(1, "a", {"v": "x" * 400})
    service.put(1, "b", {"v": "x" * 400})
    with pytest.raises(QuotaExceeded) as refused:
        service.put(1, "c", {"v": "x" * 400})
    assert refused.value.details["quota"]["limit"] == "QUOTA_ITEMS_MB"
    service.put(2, "c", {"v": "x" * 400})  # another owner has its own room
    service.put(1, "a", {"v": "small"})  # a smaller replacement fits
    service.put(1, "c", {"v": "x" * 400})
