"""Class sizes of an exponentially decaying long-tailed split."""
from typing import List


def exponential_class_sizes(max_count: float, num_classes: int,
                            imbalance_ratio: float) -> List[int]:
    """Images per class for the exponential profile of CIFAR-LT (Cao et al.).

    Class ``i`` keeps ``floor(max_count * (1 / imbalance_ratio) ** (i /
    (num_classes - 1)))`` images, so class 0 keeps ``max_count`` and the last
    class ``max_count / imbalance_ratio``. The float expression matches
    LIFT's ``int(img_max * imb_factor ** (i / (cls_num - 1.0)))`` with
    ``imb_factor = 1 / imbalance_ratio``, so the sizes agree exactly.

    Args:
        max_count (float): Images of class 0.
        num_classes (int): Number of classes, at least 2.
        imbalance_ratio (float): Ratio of the first to the last class size,
            at least 1 (1 gives a balanced split).

    Returns:
        List[int]: The size of each class.

    Raises:
        ValueError: If an argument is out of range.

    Examples:
        >>> exponential_class_sizes(500, 100, 100)[::33]
        [500, 107, 23, 5]
    """
    if num_classes < 2:
        raise ValueError(f'num_classes must be at least 2, got {num_classes}.')
    if imbalance_ratio < 1:
        raise ValueError('imbalance_ratio (largest / smallest class) must be '
                         f'at least 1, got {imbalance_ratio}.')
    if max_count < 1:
        raise ValueError(f'max_count must be at least 1, got {max_count}.')
    factor = 1.0 / imbalance_ratio
    return [
        int(max_count * factor**(i / (num_classes - 1.0)))
        for i in range(num_classes)
    ]
