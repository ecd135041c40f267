"""Test-time ensembling switched on by the config's hook, by ``tools/test.py --tta`` (with ``--cfg-options``) and
in 2-process testing: all give the same metrics."""
import pytest
from mmengine.config import Config, ConfigDict

from lift_mm.models.tta import AverageLogitsTTA
from demo_runs import demo_runner, last_metrics, one_thread, run_test_tool

pytestmark = pytest.mark.slow

TTE_CONFIG = 'configs/lift/lift_demo_tte.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A demo model trained for one epoch (in this process, which also generates the demo data)."""
    root = tmp_path_factory.mktemp('tte_tools')
    with one_thread():
        demo_runner('configs/lift/lift_demo.py', root / 'train', root / 'data', {'train_cfg.max_epochs': 1}).train()
    return dict(root=root, data=root / 'data', checkpoint=root / 'train' / 'epoch_1.pth')


def hook_metrics(trained, monkeypatch, name, options=None, edit=None):
    """Test with the TTE config in this process (through its hook unless ``edit`` wraps the model); checks that the
    views went through AverageLogitsTTA."""
    calls = []
    mean_logits = AverageLogitsTTA.mean_logits
    monkeypatch.setattr(AverageLogitsTTA, 'mean_logits',
                        lambda self, views: calls.append(len(views)) or mean_logits(self, views))
    runner = demo_runner(TTE_CONFIG, trained['root'] / name, trained['data'],
                         {'load_from': str(trained['checkpoint']), **(options or {})}, edit=edit)
    with one_thread():
        metrics = runner.test()
    assert calls
    if edit is None:
        assert not isinstance(runner.model, AverageLogitsTTA), 'the hook must wrap the model only for testing'
    return {key.split('/')[-1]: value for key, value in metrics.items()}, set(calls)


def mmpretrain_tta(cfg: Config) -> None:
    """What mmpretrain 1.2.0's own tools/test.py does with --tta to a config that has `tta_model` and
    `tta_pipeline`: wrap the model, test with the TTA pipeline, and collate test batches with default_collate
    unless the config chooses (its default loader settings, under the config's). Its pin_memory=True default is
    left out: it changes no numbers."""
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    loader = ConfigDict(collate_fn=dict(type='default_collate'))
    loader.update(cfg.test_dataloader)
    cfg.test_dataloader = loader


def assert_same_metrics(logged, computed):
    assert set(logged) <= set(computed)
    for name, value in logged.items():
        assert value == pytest.approx(computed[name], abs=1e-4), name


def test_tta_flag_with_cfg_options_matches_the_hook(trained, monkeypatch):
    """Ten crops, chosen by --cfg-options for tools/test.py --tta, and in the config for the hook."""
    computed, views = hook_metrics(trained, monkeypatch, 'hook_ten', {'tta_pipeline.1.mode': 'ten_crop'})
    assert views == {10}
    log = run_test_tool(TTE_CONFIG, trained['checkpoint'], trained['root'] / 'flag', trained['data'],
                        flags=['--tta'], options=['tta_pipeline.1.mode=ten_crop'])
    assert 'TestTimeEnsembleHook: the model is a TTA model already' in log and "mode='ten_crop'" in log
    assert_same_metrics(last_metrics(log), computed)


def test_two_processes_give_the_metrics_of_one(trained, monkeypatch):
    computed, views = hook_metrics(trained, monkeypatch, 'hook_five')
    assert views == {5}
    log = run_test_tool(TTE_CONFIG, trained['checkpoint'], trained['root'] / 'ddp', trained['data'], processes=2)
    assert 'TestTimeEnsembleHook: testing with AverageLogitsTTA' in log
    assert 'Distributed launcher: pytorch' in log
    assert_same_metrics(last_metrics(log), computed)


def test_mmpretrains_test_tool_with_default_collate_matches_the_hook(trained, monkeypatch):
    """mmpretrain's tools/test.py --tta stacks each view's images (default_collate); the hook's loader does not."""
    computed, views = hook_metrics(trained, monkeypatch, 'hook_mmpretrain')
    assert views == {5}
    stacked, views = hook_metrics(trained, monkeypatch, 'mmpretrain_tool', edit=mmpretrain_tta)
    assert views == {5}
    assert_same_metrics(stacked, computed)
