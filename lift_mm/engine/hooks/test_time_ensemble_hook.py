import copy
from typing import Optional

from mmengine.dataset import Compose
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel
from mmpretrain.registry import HOOKS, MODELS

from ..tta_setup import tta_settings
from .utils import unwrap_model


@HOOKS.register_module()
class TestTimeEnsembleHook(Hook):
    """Test with test-time ensembling (LIFT's TTE) when the config asks for it.

    During testing the model is wrapped in the config's ``tta_model`` (default :class:`AverageLogitsTTA`) and
    the test data go through ``tta_pipeline`` (e.g. ending in :class:`MultiViewCrop`): the settings that
    ``tools/test.py --tta`` uses, read the same way (:func:`tta_settings`), so both give the same predictions.
    The hook switches TTE on from the config, so ``tools/test.py`` without ``--tta`` and the test after training
    use it too; validation during training keeps the plain pipeline (LIFT ensembles at test time only). After the
    test, the plain model and data loader are put back. With ``--tta`` the model is already a TTA model and the
    hook does nothing.

    The settings are checked (and the TTA pipeline built) in ``before_run``, so a bad ``tta_pipeline`` fails
    before training starts. Enable it with ``custom_hooks = [..., dict(type='TestTimeEnsembleHook')]``.
    """

    def __init__(self) -> None:
        self._plain: Optional[tuple] = None

    def before_run(self, runner) -> None:
        self.tta_model, self.tta_pipeline = tta_settings(runner.cfg)
        Compose(copy.deepcopy(self.tta_pipeline))

    def before_test(self, runner) -> None:
        model = unwrap_model(runner.model)
        if isinstance(model, BaseTTAModel):
            runner.logger.info('TestTimeEnsembleHook: the model is a TTA model already (tools/test.py --tta).')
            return
        loop = runner.test_loop
        self._plain = (runner.model, loop.dataloader)
        loader_cfg = copy.deepcopy(runner.cfg.test_dataloader)
        loader_cfg.dataset.pipeline = copy.deepcopy(self.tta_pipeline)
        # Seeded as the test loop seeds its own loader, so random views match those of tools/test.py --tta.
        loop.dataloader = runner.build_dataloader(
            loader_cfg, seed=runner.seed, diff_rank_seed=runner.cfg.get('randomness', {}).get('diff_rank_seed', False))
        runner.model = MODELS.build(dict(**self.tta_model, module=model))
        runner.logger.info(f'TestTimeEnsembleHook: testing with {self.tta_model["type"]}.')

    def after_test(self, runner) -> None:
        if self._plain is not None:
            runner.model, runner.test_loop.dataloader = self._plain
            self._plain = None
