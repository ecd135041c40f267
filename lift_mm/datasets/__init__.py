from .cifar100_lt import CIFAR100LT, select_long_tail_indices
from .imagenet_lt import ImageNetLT
from .inaturalist2018 import INaturalist2018
from .long_tail_benchmark import LongTailBenchmark
from .long_tail_dataset import LongTailDataset
from .long_tail_groups import GROUP_NAMES, long_tail_groups
from .long_tail_sizes import exponential_class_sizes
from .places_lt import PlacesLT
from .synthetic_long_tail import SyntheticLongTail

__all__ = [
    'CIFAR100LT', 'GROUP_NAMES', 'INaturalist2018', 'ImageNetLT',
    'LongTailBenchmark', 'LongTailDataset', 'PlacesLT', 'SyntheticLongTail',
    'exponential_class_sizes', 'long_tail_groups', 'select_long_tail_indices'
]
from .transforms import MultiViewCrop  # noqa: E402

__all__ += ['MultiViewCrop']
from .cached_features import CachedFeatureDataset, extract_features, feature_cache_key  # noqa: E402

__all__ += ['CachedFeatureDataset', 'extract_features', 'feature_cache_key']
