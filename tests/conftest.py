import pytest
from mmengine.registry import DefaultScope


def _mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


# Build every test's components (and module-wide fixtures') in mmpretrain's scope, as configs with
# default_scope='mmpretrain' do. A Runner created by an earlier test leaves its own scope as the process-wide
# default; without these, registry lookups would depend on the order the tests run in.
mmpretrain_scope_for_module = pytest.fixture(scope='module', autouse=True)(_mmpretrain_scope)
mmpretrain_scope = pytest.fixture(autouse=True)(_mmpretrain_scope)
