"""MMEngine checkpoints under torch's weights-only loading: they load after registration, code still does not run."""
import copy
import io
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

from lift_mm.utils.checkpoint_safety import checkpoint_safe_globals, register_checkpoint_safe_globals


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, torch.stack(labels)))
        return [(logit.argmax(), label) for logit, label in zip(logits, labels)]


class ToyDataset(Dataset):
    # Numpy arrays in metainfo end up in meta['dataset_meta'] and message_hub['runtime_info'].
    metainfo = dict(classes=('a', 'b'), class_counts=np.array([5, 3]), image_mean=np.array([0.5], np.float32))

    def __len__(self):
        return 8

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(4, generator=generator), labels=torch.tensor(index % 2))


class ToyAccuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(int(pred == label) for pred, label in data_samples)

    def compute_metrics(self, results):
        # A numpy scalar, as metrics often return; CheckpointHook stores it as best_score.
        return dict(acc=np.float64(np.mean(results)))


def make_runner(work_dir, max_epochs, **kwargs):
    loader = dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=copy.deepcopy(loader),
        val_dataloader=copy.deepcopy(loader),
        val_evaluator=Evaluator([ToyAccuracy()]),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1], by_epoch=True),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, save_best='acc', rule='greater')),
        custom_hooks=[dict(type='EMAHook')],
        default_scope='mmengine',
        experiment_name=f'checkpoint_safety_{max_epochs}_{os.path.basename(str(work_dir))}',
        **kwargs)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Path of a checkpoint written by MMEngine's CheckpointHook after two training epochs."""
    work_dir = tmp_path_factory.mktemp('train')
    make_runner(work_dir, max_epochs=2).train()
    return str(work_dir / 'epoch_2.pth')


@pytest.fixture
def no_user_safe_globals():
    """Empty torch's user allow-list for the test and restore it afterwards."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(saved)


def test_unregistered_load_fails(checkpoint, no_user_safe_globals):
    with pytest.raises(pickle.UnpicklingError, match='Unsupported global'):
        torch.load(checkpoint)


def test_mmengine_checkpoint_loads_weights_only(checkpoint, no_user_safe_globals):
    register_checkpoint_safe_globals()
    raw = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    assert set(raw) >= {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers', 'ema_state_dict'}
    runtime_info = raw['message_hub']['runtime_info']
    assert isinstance(runtime_info['eta'], np.float64)
    assert isinstance(runtime_info['best_score'], np.float64)
    np.testing.assert_array_equal(raw['meta']['dataset_meta']['class_counts'], [5, 3])
    assert raw['meta']['dataset_meta']['image_mean'].dtype == np.float32
    loss_history = raw['message_hub']['log_scalars']['train/loss']
    assert isinstance(loss_history, HistoryBuffer)
    assert loss_history.statistics('mean') == pytest.approx(loss_history.mean())

    hub = MessageHub.get_instance('checkpoint_safety_hub')
    hub.load_state_dict(raw['message_hub'])
    assert hub.get_scalar('train/loss').current() == loss_history.current()

    model = ToyModel()
    returned = load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    assert returned['meta']['epoch'] == 2
    torch.testing.assert_close(model.fc.weight, raw['state_dict']['fc.weight'])


def test_runner_resumes_from_checkpoint(checkpoint, tmp_path, no_user_safe_globals):
    register_checkpoint_safe_globals()
    runner = make_runner(tmp_path, max_epochs=3, load_from=checkpoint, resume=True)
    runner.train()
    assert runner.epoch == 3
    assert os.path.exists(tmp_path / 'epoch_3.pth')


def test_numpy_1_checkpoint_names_load(no_user_safe_globals):
    """Files written with numpy < 2 name numpy.core.multiarray instead of numpy._core.multiarray."""

    class LegacyNumpyPickler(pickle._Pickler):

        def save_global(self, obj, name=None):
            module = getattr(obj, '__module__', None)
            if module == 'numpy._core.multiarray':
                self.write(pickle.GLOBAL + f'numpy.core.multiarray\n{obj.__name__}\n'.encode())
                self.memoize(obj)
            else:
                super().save_global(obj, name)

    legacy_pickle_module = type(pickle)('legacy_pickle_module')
    legacy_pickle_module.Pickler = LegacyNumpyPickler
    buffer = io.BytesIO()
    torch.save(dict(history=np.arange(3.0), eta=np.float64(2.5)), buffer, pickle_module=legacy_pickle_module)
    assert b'numpy.core.multiarray\n_reconstruct' in buffer.getvalue()
    with pytest.raises(pickle.UnpicklingError, match='numpy.core.multiarray'):
        torch.load(io.BytesIO(buffer.getvalue()))
    register_checkpoint_safe_globals()
    loaded = torch.load(io.BytesIO(buffer.getvalue()))
    np.testing.assert_array_equal(loaded['history'], [0.0, 1.0, 2.0])
    assert loaded['eta'] == np.float64(2.5)


def test_registration_is_idempotent(no_user_safe_globals):
    register_checkpoint_safe_globals()
    first = torch.serialization.get_safe_globals()
    register_checkpoint_safe_globals()
    assert len(torch.serialization.get_safe_globals()) == len(first) == len(checkpoint_safe_globals())


class WritesFile:
    """Unpickling this would run a shell command that creates ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f'touch {self.path}', )


class BuildsAnything:
    """Unpickling this would instantiate an arbitrary class and call it."""

    def __reduce__(self):
        return WritesFile, ('unused', )


@pytest.mark.parametrize('load', [torch.load, CheckpointLoader.load_checkpoint])
def test_code_in_a_checkpoint_is_still_refused(tmp_path, load):
    register_checkpoint_safe_globals()
    marker = tmp_path / 'code_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict=OrderedDict(w=torch.ones(1)), payload=WritesFile(marker)), path)
    with pytest.raises(pickle.UnpicklingError, match='GLOBAL posix.system'):
        load(path)
    assert not marker.exists()
    torch.save(dict(payload=BuildsAnything()), path)
    with pytest.raises(pickle.UnpicklingError, match='WritesFile'):
        load(path)


@pytest.mark.parametrize(
    'target, name, refused',
    [
        (HistoryBuffer, '__init__', '__init__'),
        (HistoryBuffer, 'register_statistics', 'register_statistics'),
        (OrderedDict, 'fromkeys', 'fromkeys'),
        # A step towards module globals; pickling HistoryBuffer.update itself already needs getattr.
        (HistoryBuffer.update, '__globals__', 'update'),
    ])
def test_getattr_is_limited_to_history_buffer_statistics(target, name, refused):
    register_checkpoint_safe_globals()

    class GetsAttribute:

        def __reduce__(self):
            return getattr, (target, name)

    buffer = io.BytesIO()
    torch.save(GetsAttribute(), buffer)
    with pytest.raises(pickle.UnpicklingError, match=rf"refused getattr\(.*'{refused}'\)"):
        torch.load(io.BytesIO(buffer.getvalue()))
