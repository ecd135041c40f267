import copy
from typing import Dict, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, autocast
from mmpretrain.registry import DATASETS, HOOKS
from torch.utils.data import Subset

from ...evaluation.metrics import LongTailAccuracy
from .utils import per_class_indices, train_images_cfg


@HOOKS.register_module()
class TrainingAccuracyHook(Hook):
    """Evaluate the training set as a test set every ``interval`` epochs (LIFT's Figure 5 and Table 8).

    The training images (dataset wrappers such as ``RepeatDataset`` left out) go through the test data loader's
    pipeline, batch size and workers, the model predicts as in testing and the test evaluator (e.g.
    :class:`LongTailAccuracy`: top-1, many / medium / few, ...) scores the predictions, so the numbers equal
    ``tools/test.py CONFIG epoch_k.pth --split train`` when all images are used. Each metric is logged, and
    written to the visualizer backends (``scalars.json``, TensorBoard, ...) at step = the epoch, as
    ``prefix + '_' + name`` (``train_long_tail/top1``, ``train_long_tail/few``, ...). Evaluation runs after
    every ``interval``-th training epoch and after the last one. Under data parallelism each process predicts
    its share and the evaluator gathers the results, as in validation.

    After each evaluation the hook also draws LIFT's Figure 5 for this launch of the run: the training top-1
    accuracy of all classes and of the many / medium / few groups against the epochs evaluated so far (the
    picture ``tools/analysis/plot_training_accuracy.py`` draws of the whole run from ``scalars.json``), and sends
    it to the visualizer backends as the image ``prefix + '_accuracy'`` at step = the epoch
    (``vis_data/vis_image/train_accuracy_5.png`` with ``LocalVisBackend``, the Images tab of TensorBoard, ...).
    It draws the metrics of the evaluator's :class:`LongTailAccuracy`; an evaluator without one gets no
    figure, and a warning says so.

    An evaluator that writes files (``LongTailAccuracy(dump_file=...)``, ``DumpResults``) writes them for the
    training set too, at every evaluation.

    The hook is off unless the config adds it: ``custom_hooks = [..., dict(type='TrainingAccuracyHook',
    interval=5)]``. It needs an epoch-based training loop.

    Args:
        interval (int): Evaluate after every ``interval`` epochs (and after the last). Defaults to 1.
        max_per_class (int, optional): Evaluate at most this many images per class, drawn at random per class
            with ``seed`` once for the whole run, the same on every process; None evaluates all. Defaults to None.
        seed (int, optional): Seed of that draw; None uses the runner's seed. Defaults to None.
        prefix (str): Prepended to the evaluator's metric names. Defaults to ``'train'``.
    """

    def __init__(self,
                 interval: int = 1,
                 max_per_class: Optional[int] = None,
                 seed: Optional[int] = None,
                 prefix: str = 'train') -> None:
        for key, value, optional in (('interval', interval, False), ('max_per_class', max_per_class, True)):
            if not (optional and value is None) and not (type(value) is int and value >= 1):
                raise ValueError(f'TrainingAccuracyHook: `{key}`={value!r} must be an integer >= 1'
                                 f'{" (or None)" if optional else ""}.')
        self.interval = interval
        self.max_per_class = max_per_class
        self.seed = seed
        self.prefix = prefix
        self._loader = None
        self._evaluator = None
        self._fp16 = False
        # Names of the drawn metrics before '/' + 'top1', 'many', ...; None when the evaluator has none.
        self._curve_prefix = None
        self._history: Dict[int, Dict[str, float]] = {}

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise TypeError(f'TrainingAccuracyHook evaluates after training epochs, but the training loop is '
                            f'{type(runner.train_loop).__name__}; use an epoch-based `train_cfg` (by_epoch=True) or '
                            'remove the hook.')
        cfg = runner.cfg
        if not cfg.get('test_dataloader') or not cfg.get('test_evaluator'):
            raise KeyError('TrainingAccuracyHook evaluates with the test data loader and test evaluator, but '
                           f'{cfg.filename or "the config"} lacks `test_dataloader` or `test_evaluator`.')
        dataset = DATASETS.build(train_images_cfg(cfg, 'TrainingAccuracyHook'))
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        seed = runner.seed if self.seed is None else self.seed
        indices = per_class_indices(dataset.get_gt_labels(), self.max_per_class, seed)
        loader_cfg = copy.deepcopy(cfg.test_dataloader)
        loader_cfg['dataset'] = dataset if self.max_per_class is None else Subset(dataset, indices)
        # Seeded as the test loop seeds its loader, so that tools/test.py --split train sees the same data.
        self._loader = runner.build_dataloader(
            loader_cfg, seed=runner.seed, diff_rank_seed=cfg.get('randomness', {}).get('diff_rank_seed', False))
        self._evaluator = runner.build_evaluator(copy.deepcopy(cfg.test_evaluator))
        self._evaluator.dataset_meta = dataset.metainfo
        self._fp16 = (cfg.get('test_cfg') or {}).get('fp16', False)
        self._curve_prefix = next((f'{self.prefix}_{metric.prefix}' for metric in self._evaluator.metrics
                                   if isinstance(metric, LongTailAccuracy)), None)
        if self._curve_prefix is None:
            runner.logger.warning('TrainingAccuracyHook: the test evaluator has no LongTailAccuracy, so no '
                                  'training-accuracy figure is sent to the visualizer; the metrics are logged.')
        runner.logger.info(f'TrainingAccuracyHook: evaluating {len(indices)} training images every '
                           f'{self.interval} epoch(s).')

    def after_train_epoch(self, runner) -> None:
        if not (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            return
        metrics = self.evaluate(runner)
        epoch = runner.epoch + 1
        runner.visualizer.add_scalars(metrics, step=epoch)
        self._history[epoch] = metrics
        if self._curve_prefix is not None and is_main_process():
            self.draw(runner, epoch)
        runner.logger.info(f'Epoch(train accuracy) [{epoch}] ' +
                           '  '.join(f'{name}: {value:.4f}' for name, value in metrics.items()))

    def draw(self, runner, epoch: int) -> None:
        """Send the curves of the evaluations so far to the visualizer backends, as the image of ``epoch``."""
        # Here rather than at the top: importing lift_mm does not load matplotlib.
        from ...utils.figures import figure_to_rgb, group_curves, training_accuracy_figure
        figure = training_accuracy_figure({runner.experiment_name: group_curves(self._history, self._curve_prefix)})
        runner.visualizer.add_image(f'{self.prefix}_accuracy', figure_to_rgb(figure), step=epoch)

    @torch.no_grad()
    def evaluate(self, runner) -> Dict[str, float]:
        """Predict the training images as the test loop does and score them with the test evaluator.

        Args:
            runner (Runner): The training runner, after ``before_train``.

        Returns:
            dict[str, float]: The metrics, named ``prefix + '_' + name``.
        """
        model = runner.model
        training = model.training
        model.eval()
        try:
            for data_batch in self._loader:
                with autocast(enabled=self._fp16):
                    outputs = model.test_step(data_batch)
                self._evaluator.process(data_samples=outputs, data_batch=data_batch)
        finally:
            model.train(training)
        metrics = self._evaluator.evaluate(len(self._loader.dataset))
        return {f'{self.prefix}_{name}': value for name, value in metrics.items()}
