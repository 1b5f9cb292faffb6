import pytest

from tests.fuzz.profile import LONG


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The long profile runs for minutes: the suite's per-test timeout would cut it short.
    if LONG:
        here = __file__.rsplit("/", 1)[0]
        for item in items:
            if str(item.path).startswith(here):
                item.add_marker(pytest.mark.timeout(0))
