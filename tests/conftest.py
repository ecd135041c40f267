import pytest
from mmengine.registry import DefaultScope

from tiny_clip import CLIP_SEED, make_tiny_clip, save_open_clip_checkpoint


def _mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


# Build every test's components (and module-wide fixtures') in mmpretrain's scope, as configs with
# default_scope='mmpretrain' do. A Runner created by an earlier test leaves its own scope as the process-wide
# default; without these, registry lookups would depend on the order the tests run in.
mmpretrain_scope_for_module = pytest.fixture(scope='module', autouse=True)(_mmpretrain_scope)
mmpretrain_scope = pytest.fixture(autouse=True)(_mmpretrain_scope)


@pytest.fixture(scope='module')
def clip_file(tmp_path_factory) -> str:
    """A tiny random open_clip CLIP (seed ``CLIP_SEED``) saved as an open_clip checkpoint, once per test module."""
    return save_open_clip_checkpoint(make_tiny_clip(seed=CLIP_SEED), tmp_path_factory.mktemp('clip') / 'tiny.pt')
