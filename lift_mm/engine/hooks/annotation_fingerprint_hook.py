import os.path as osp
from typing import Any, Dict, Tuple

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ...datasets.annotation_files import file_sha256
from .utils import inner_datasets, is_dataset_wrapper

# Runtime-info key of the message hub, which MMEngine saves in every checkpoint and restores only on resume.
FINGERPRINT_INFO_KEY = 'train_annotation_fingerprint'
ON_CHANGE = ('error', 'warn')

Fingerprint = Dict[str, Tuple[str, str]]


def annotation_fingerprint(dataset: Any) -> Fingerprint:
    """SHA-256 of the annotation files a training dataset is read from.

    A dataset with ``annotation_fingerprint()`` (:class:`~lift_mm.datasets.LongTailDataset`) gives its own; other
    datasets are fingerprinted by their ``ann_file`` if it is a local file, and wrappers by what they wrap (keys
    prefixed with the position in a ``ConcatDataset``, see :func:`~lift_mm.engine.hooks.utils.inner_datasets`).

    Args:
        dataset (Any): The training dataset.

    Returns:
        Dict[str, Tuple[str, str]]: ``(path, hex digest)`` by name; empty if nothing is known.
    """
    if is_dataset_wrapper(dataset):
        return {f'{position}{name}': value for position, inner in inner_datasets(dataset)
                for name, value in annotation_fingerprint(inner).items()}
    if callable(getattr(dataset, 'annotation_fingerprint', None)):
        return dataset.annotation_fingerprint()
    ann_file = getattr(dataset, 'ann_file', None)
    if isinstance(ann_file, str) and osp.isfile(ann_file):
        return dict(ann_file=(ann_file, file_sha256(ann_file)))
    return {}


@HOOKS.register_module()
class AnnotationFingerprintHook(Hook):
    """Refuse to resume training on annotation files that changed since the checkpoint was saved.

    Before training, the SHA-256 of the training set's annotation files (see :func:`annotation_fingerprint`) is
    put in the message hub, which MMEngine saves in every checkpoint and restores on resume (not on ``load_from``,
    which may rightly start from weights trained on other data). A resumed run compares the restored fingerprint
    with its own before the first iteration; a difference means the samples or labels no longer match the saved
    training state, and is reported naming each changed file.

    Enable it with ``default_hooks.annotation_fingerprint = dict(type='AnnotationFingerprintHook')``; resume
    anyway with ``--cfg-options default_hooks.annotation_fingerprint.on_change=warn``.

    Args:
        on_change (str): ``'error'`` raises a RuntimeError, ``'warn'`` logs a warning and resumes.
            Defaults to ``'error'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_change: str = 'error') -> None:
        if on_change not in ON_CHANGE:
            raise ValueError(f'`on_change` must be one of {ON_CHANGE}, got {on_change!r}.')
        self.on_change = on_change

    def before_train(self, runner) -> None:
        current = annotation_fingerprint(runner.train_dataloader.dataset)
        saved = runner.message_hub.get_info(FINGERPRINT_INFO_KEY)
        if saved is not None:
            changed = [
                f'{name} {(current.get(name) or saved[name])[0]}' for name in sorted(set(saved) | set(current))
                if saved.get(name, (None, None))[1] != current.get(name, (None, None))[1]
            ]
            if changed:
                message = ('The training annotation files changed since the checkpoint being resumed was saved: '
                           f'{", ".join(changed)}. The resumed training state does not belong to these samples '
                           'and labels. Restore the files, or resume anyway with `--cfg-options '
                           'default_hooks.annotation_fingerprint.on_change=warn`.')
                if self.on_change == 'error':
                    raise RuntimeError(message)
                runner.logger.warning(message)
        runner.message_hub.update_info(FINGERPRINT_INFO_KEY, current)
