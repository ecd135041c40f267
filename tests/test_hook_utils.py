"""What hooks look through: model wrappers and dataset wrappers, built or as configs."""
import torch
from mmengine.dataset import BaseDataset, ClassBalancedDataset, ConcatDataset, RepeatDataset
from mmengine.model import MMDistributedDataParallel
from torch.utils.data import ConcatDataset as TorchConcatDataset
from torch.utils.data import Subset

from lift_mm.engine.hooks import annotation_fingerprint
from lift_mm.engine.hooks.utils import inner_datasets, is_dataset_wrapper, unwrap_model


class Listed(BaseDataset):
    """A dataset in memory with its own annotation fingerprint."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(ann_file='', metainfo=dict(classes=('a', 'b')), pipeline=[])

    def load_data_list(self):
        return [dict(gt_label=label) for label in (0, 1, 1)]

    def get_cat_ids(self, index):
        return [self.get_data_info(index)['gt_label']]

    def annotation_fingerprint(self):
        return dict(ann_file=(f'{self.name}.txt', f'digest of {self.name}'))


def test_inner_datasets_of_built_wrappers_keep_concatenation_positions():
    first, second, third = Listed('first'), Listed('second'), Listed('third')
    nested = TorchConcatDataset([RepeatDataset(first, times=2),
                                 TorchConcatDataset([Subset(second, [0, 2]), ClassBalancedDataset(third, 0.5)])])
    assert [(position, inner.name) for position, inner in inner_datasets(nested)] == [
        ('0.', 'first'), ('1.0.', 'second'), ('1.1.', 'third')]
    assert [(position, inner.name) for position, inner in inner_datasets(ConcatDataset([first, second]))] == [
        ('0.', 'first'), ('1.', 'second')]
    assert inner_datasets(first) == [('', first)]
    assert is_dataset_wrapper(nested) and not is_dataset_wrapper(first)


def test_inner_datasets_of_configs_follow_only_dataset_configs():
    plain = dict(type='LongTailDataset', ann_file='train.txt', pipeline=[])
    repeated = dict(type='RepeatDataset', times=2, dataset=dict(type='ClassBalancedDataset', dataset=plain))
    concat = dict(type='ConcatDataset', datasets=[plain, repeated])
    assert inner_datasets(repeated) == [('', plain)]
    assert inner_datasets(concat) == [('0.', plain), ('1.', plain)]
    # A setting that happens to be called `dataset` is not a wrapped dataset.
    named = dict(type='SomeDataset', dataset='imagenet', pipeline=[])
    assert inner_datasets(named) == [('', named)] and not is_dataset_wrapper(named)


def test_annotation_fingerprint_looks_through_any_wrapper():
    first, second = Listed('first'), Listed('second')
    expected = {'0.ann_file': ('first.txt', 'digest of first'), '1.ann_file': ('second.txt', 'digest of second')}
    assert annotation_fingerprint(ConcatDataset([first, second])) == expected
    assert annotation_fingerprint(TorchConcatDataset([RepeatDataset(first, times=3), Subset(second, [1])])) == expected


def test_unwrap_model_takes_the_module_out_of_mmengine_wrappers():
    model = torch.nn.Linear(2, 2)
    wrapper = MMDistributedDataParallel.__new__(MMDistributedDataParallel)
    torch.nn.Module.__init__(wrapper)
    wrapper.module = model
    assert unwrap_model(wrapper) is model
    assert unwrap_model(model) is model
