import inspect
from typing import Optional, Sequence, Tuple

import torch
from mmengine.dist import broadcast
from mmengine.hooks import Hook
from mmpretrain.registry import DATASETS, HOOKS, MODELS
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Subset

from ...models.heads import ClassWeightHead, fit_balanced_logistic_regression
from ..feature_extraction import extract_features
from .utils import per_class_indices, train_images_cfg, unwrap_model

METHODS = ('class_mean', 'linear_probe')
LINEAR_PROBE_KEYS = ('C', 'max_iter', 'tol')


@HOOKS.register_module()
class HeadInitHook(Hook):
    """Initialise the class weights from image features of the training set (LIFT's ``init_head``).

    Methods:

    * ``'class_mean'``: ``w_k`` is the L2-normalised mean feature of the training images of class k. With
      ``shots=n`` only ``n`` images per class are used (LIFT's ``1_shot``, ``10_shot``, ``100_shot``), drawn at
      random per class with ``seed``, the same on every process (LIFT draws them unseeded).
    * ``'linear_probe'``: ``w_k`` is the L2-normalised weight of a class-balanced multinomial logistic
      regression with L2 penalty fitted to those features (LIFT uses scikit-learn's ``LogisticRegression(
      class_weight='balanced')``; here :func:`fit_balanced_logistic_regression` solves the same problem in
      torch). ``linear_probe`` sets its ``C``, ``max_iter`` and ``tol``.

    The features are those of the frozen pretrained encoder without light modules (LIFT's ``use_tuner=False``):
    a backbone whose type takes ``light_modules`` is built again from the config with ``light_modules=[]`` (and
    dropped afterwards); other backbones have none and are used as they are. The images are the training set's
    (wrappers such as ``RepeatDataset`` left out) through the test pipeline, or ``pipeline`` (LIFT uses resize
    to the resolution and a centre crop), without augmentation. Under data parallelism each process extracts
    its share of the images, the results are combined across processes and rank 0's weights are broadcast.

    Random and CLIP-text initialisations need no hook: they belong to the head (``text_init``), which must not
    also have ``text_init`` here. The head must be a :class:`ClassWeightHead` (``CosineClsHead``,
    ``LIFTLinearClsHead``, ``L2NormedClsHead``, ``LayerNormedClsHead``).

    The weights are computed in ``before_train``, which MMEngine calls after loading checkpoints: when the run
    loaded one (``--resume``, ``load_from``), its head weights are kept and nothing is computed.

    Args:
        method (str): ``'class_mean'`` or ``'linear_probe'``. Defaults to ``'class_mean'``.
        shots (int, optional): Images per class to use; None uses all. Defaults to None.
        pipeline (Sequence[dict], optional): Pipeline of the training images; None takes the test data loader's.
            Defaults to None.
        batch_size (int, optional): Images per forward pass; None takes the test data loader's. Defaults to None.
        num_workers (int, optional): Data loading workers; None takes the test data loader's. Defaults to None.
        seed (int, optional): Seed of the k-shot draw; None uses the runner's seed. Defaults to None.
        linear_probe (dict, optional): ``C``, ``max_iter`` and ``tol`` of the logistic regression (defaults 1.0,
            100 and 1e-4, scikit-learn's); only with ``method='linear_probe'``. Defaults to None.
    """

    def __init__(self,
                 method: str = 'class_mean',
                 shots: Optional[int] = None,
                 pipeline: Optional[Sequence[dict]] = None,
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None,
                 seed: Optional[int] = None,
                 linear_probe: Optional[dict] = None) -> None:
        if method not in METHODS:
            raise ValueError(f'HeadInitHook: `method`={method!r} is not supported; valid methods: {list(METHODS)}. '
                             "Text initialisation is the head's `text_init`; random is the head's default.")
        for key, value, least in (('shots', shots, 1), ('batch_size', batch_size, 1), ('num_workers', num_workers, 0)):
            if value is not None and not (isinstance(value, int) and value >= least):
                raise ValueError(f'HeadInitHook: `{key}`={value!r} must be an integer >= {least} (or None).')
        if linear_probe is not None:
            if method != 'linear_probe':
                raise ValueError("HeadInitHook: `linear_probe` options only apply to method='linear_probe'.")
            unknown = set(linear_probe) - set(LINEAR_PROBE_KEYS)
            if unknown:
                raise KeyError(f'HeadInitHook: `linear_probe` has unknown keys {sorted(unknown)}; valid keys: '
                               f'{list(LINEAR_PROBE_KEYS)}.')
        self.method = method
        self.shots = shots
        self.pipeline = pipeline
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.linear_probe = dict(linear_probe or {})
        self._checkpoint_loaded = False

    def before_run(self, runner) -> None:
        head = getattr(unwrap_model(runner.model), 'head', None)
        if not isinstance(head, ClassWeightHead):
            raise TypeError(f'HeadInitHook needs a lift_mm ClassWeightHead (CosineClsHead, LIFTLinearClsHead, '
                            f'L2NormedClsHead, LayerNormedClsHead), not {type(head).__name__}.')
        if head.text_init is not None:
            raise ValueError(f'HeadInitHook(method={self.method!r}) would replace the text initialisation of the '
                             'head: set `model.head.text_init=None` or remove the hook.')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._checkpoint_loaded = True

    def before_train(self, runner) -> None:
        if self._checkpoint_loaded:
            runner.logger.info(f'HeadInitHook: the head weights come from the loaded checkpoint; {self.method} '
                               'initialisation skipped.')
            return
        model = unwrap_model(runner.model)
        training = model.training
        model.eval()
        try:
            weights, num_images = self._class_weights(runner, model)
        finally:
            model.train(training)
        model.head.load_class_weights(weights)
        shots = 'all' if self.shots is None else f'at most {self.shots}'
        runner.logger.info(f'HeadInitHook: head initialised by {self.method} on {num_images} training images '
                           f'({shots} per class).')

    @staticmethod
    def _frozen_backbone(cfg, model: nn.Module) -> nn.Module:
        backbone_cfg = cfg.get('model', {}).get('backbone')
        if isinstance(backbone_cfg, dict):
            kind = backbone_cfg['type']
            backbone_type = MODELS.get(kind) if isinstance(kind, str) else kind
            if 'light_modules' in inspect.signature(backbone_type).parameters:
                backbone = MODELS.build({**backbone_cfg, 'light_modules': []})
                return backbone.to(model.head.weight.device).eval()
        return model.backbone

    def _extract(self, cfg, model: nn.Module, subset: Subset):
        """Features of ``subset`` as the head sees them, through a frozen backbone freed on return."""
        backbone = self._frozen_backbone(cfg, model)

        def encode(inputs: torch.Tensor) -> torch.Tensor:
            feats = backbone(inputs)
            return model.head.pre_logits(model.neck(feats) if model.with_neck else feats).float()

        return extract_features(
            model, subset, encode=encode, batch_size=self.batch_size or cfg.test_dataloader.batch_size,
            num_workers=cfg.test_dataloader.get('num_workers', 0) if self.num_workers is None else self.num_workers)

    def _class_weights(self, runner, model: nn.Module) -> Tuple[torch.Tensor, int]:
        cfg = runner.cfg
        dataset = DATASETS.build(train_images_cfg(cfg, 'HeadInitHook', self.pipeline))
        seed = runner.seed if self.seed is None else self.seed
        indices = per_class_indices(dataset.get_gt_labels(), self.shots, seed)
        runner.logger.info(f'HeadInitHook: extracting features of {len(indices)} training images for {self.method}.')
        extracted = self._extract(cfg, model, Subset(dataset, indices))
        device = model.head.weight.device
        features, labels = extracted.features.to(device), extracted.labels.to(device)

        num_classes = model.head.num_classes
        counts = torch.bincount(labels, minlength=num_classes).float()
        missing = (counts == 0).nonzero().flatten().tolist()
        if missing:
            raise ValueError(f'HeadInitHook: no training images of classes {missing[:10]} ({len(missing)} in all); '
                             f'{self.method} needs every class.')
        if self.method == 'class_mean':
            sums = features.new_zeros(num_classes, features.shape[1]).index_add_(0, labels, features)
            weights = F.normalize(sums / counts[:, None], dim=-1)
        else:
            weights = F.normalize(fit_balanced_logistic_regression(features, labels, num_classes,
                                                                   **self.linear_probe)[0], dim=-1)
        # Every process must start from the same weights (DDP synchronised the parameters before this hook).
        broadcast(weights, src=0)
        return weights, len(indices)
