"""Protocol for modules that need the number of training samples of every class."""
from typing import Optional, Sequence, Union

import numpy as np
import torch

ClassCounts = Union[Sequence[int], np.ndarray, torch.Tensor]


def validate_class_counts(counts: ClassCounts) -> torch.Tensor:
    """Check per-class training counts and return them as a 1-D int64 tensor.

    Args:
        counts (Sequence[int] | np.ndarray | torch.Tensor): Number of training samples of each class.

    Returns:
        torch.Tensor: The counts, int64, shape (C, ).
    """
    if isinstance(counts, torch.Tensor):
        values = counts.detach().cpu().double()
    else:
        try:
            values = torch.as_tensor(np.asarray(counts, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f'class_counts must be a sequence of per-class sample counts, got {counts!r}.') from err
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f'class_counts must be a non-empty 1-D sequence, got shape {tuple(values.shape)}.')
    bad = torch.nonzero(~torch.isfinite(values) | (values != values.round()) | (values < 0)).flatten().tolist()
    if bad:
        raise ValueError(f'class_counts must hold non-negative whole numbers; class(es) {bad[:10]} have '
                         f'{values[bad[:10]].tolist()}.')
    empty = torch.nonzero(values == 0).flatten().tolist()
    if empty:
        raise ValueError(f'class_counts is 0 for class(es) {empty[:10]}{" ..." if len(empty) > 10 else ""}: a class '
                         'without training samples has prior 0 (log prior -inf), so long-tail losses are undefined. '
                         'Give every class at least one training sample or drop the empty classes.')
    return values.long()


class ClassCountsMixin:
    """Holds the training set's per-class sample counts for a :class:`torch.nn.Module`.

    The counts are either given at construction or set later with :meth:`set_class_counts`, which
    :class:`ClassCountsHook` calls on every module of the model that has it before training starts. They are
    kept in a non-persistent int64 buffer: they move with ``module.to(device)``, are left out of
    ``state_dict`` (so checkpoints and ``load_state_dict`` are unaffected) and are not cast by
    ``module.half()``, since half precision cannot hold counts above 65504.

    Subclasses call :meth:`init_class_counts` in ``__init__`` after ``nn.Module.__init__``.
    """

    class_counts: Optional[torch.Tensor]

    def init_class_counts(self, class_counts: Optional[ClassCounts] = None) -> None:
        """Create the counts buffer, filled if ``class_counts`` is given.

        Args:
            class_counts (Sequence[int] | np.ndarray | torch.Tensor, optional): Training samples per class.
                Defaults to None (to be set by :meth:`set_class_counts`).
        """
        self.register_buffer('class_counts', None, persistent=False)
        if class_counts is not None:
            self.set_class_counts(class_counts)

    def set_class_counts(self, counts: ClassCounts) -> None:
        """Set (or replace) the per-class training counts.

        Args:
            counts (Sequence[int] | np.ndarray | torch.Tensor): Training samples of each class, all positive.
        """
        values = validate_class_counts(counts)
        # A module already moved to a device keeps its counts there.
        device = self.class_counts.device if self.class_counts is not None else values.device
        self.class_counts = values.to(device)

    def get_class_counts(self, num_classes: int, device: Union[str, torch.device]) -> torch.Tensor:
        """The counts as float64 on ``device``, checked against ``num_classes``.

        Args:
            num_classes (int): Number of classes of the logits they are used with.
            device (str | torch.device): Device of those logits.

        Returns:
            torch.Tensor: Float64 counts of shape (C, ).
        """
        if self.class_counts is None:
            raise RuntimeError(
                f'{type(self).__name__} needs the number of training samples per class, which are not set. Add '
                "`custom_hooks=[dict(type='ClassCountsHook')]` to the config to take them from the training set, "
                'or pass `class_counts=[...]` to the module.')
        if self.class_counts.numel() != num_classes:
            raise ValueError(f'{type(self).__name__} has class_counts for {self.class_counts.numel()} classes but '
                             f'the logits have {num_classes}; the counts must come from the same label set as the '
                             'head (check num_classes and the dataset).')
        if self.class_counts.device != torch.device(device):
            # ClassCountsHook sets CPU counts after the runner has moved the model; move them once, not per step.
            self.class_counts = self.class_counts.to(device)
        return self.class_counts.double()
