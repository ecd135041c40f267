from .cached_features import CachedFeatureDataset
from .cifar100_lt import CIFAR100LT, select_long_tail_indices
from .imagenet_lt import ImageNetLT
from .inaturalist2018 import INaturalist2018
from .long_tail_benchmark import LongTailBenchmark
from .long_tail_dataset import LongTailDataset, image_problem
from .long_tail_groups import GROUP_NAMES, long_tail_groups
from .long_tail_sizes import exponential_class_sizes
from .places_lt import PlacesLT
from .synthetic_long_tail import SyntheticLongTail
from .transforms import MinimalistRandomCrop, MultiViewCrop

__all__ = [
    'CIFAR100LT', 'CachedFeatureDataset', 'GROUP_NAMES', 'INaturalist2018', 'ImageNetLT', 'LongTailBenchmark',
    'LongTailDataset', 'MultiViewCrop', 'PlacesLT', 'SyntheticLongTail', 'exponential_class_sizes',
    'image_problem', 'long_tail_groups', 'select_long_tail_indices',
    'MinimalistRandomCrop'
]
