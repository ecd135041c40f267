"""lift_mm's packages import only the packages below them: utils < datasets < evaluation, models < engine."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'lift_mm'
# What each package may import of lift_mm's other packages.
BELOW = {
    'utils': set(),
    'datasets': {'utils'},
    'evaluation': {'utils', 'datasets'},
    'models': {'utils', 'datasets'},
    'engine': {'utils', 'datasets', 'evaluation', 'models'},
}


def imported_packages(path: Path) -> set:
    """The lift_mm packages (first component below ``lift_mm``) that a module imports, relative or absolute."""
    module = path.relative_to(PACKAGE.parent).with_suffix('').parts
    if module[-1] == '__init__':
        module = module[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                # `from ..x import y` in lift_mm/a/b.py resolves against lift_mm/a.
                base = module[:len(module) - node.level + (path.name == '__init__.py')]
                target = base + tuple((node.module or '').split('.'))
            else:
                target = tuple((node.module or '').split('.'))
            names = [target + (alias.name, ) for alias in node.names] if node.module is None else [target]
        elif isinstance(node, ast.Import):
            names = [tuple(alias.name.split('.')) for alias in node.names]
        else:
            continue
        found.update(name[1] for name in names if len(name) > 1 and name[0] == 'lift_mm' and name[1])
    return found


@pytest.mark.parametrize('package', sorted(BELOW))
def test_package_imports_only_what_lies_below_it(package):
    wrong = {}
    for path in sorted((PACKAGE / package).rglob('*.py')):
        above = imported_packages(path) - BELOW[package] - {package}
        if above:
            wrong[str(path.relative_to(PACKAGE))] = sorted(above)
    assert wrong == {}


def test_relative_imports_are_resolved():
    # The checker itself: lift_mm/utils/classnames.py importing `..datasets.annotation_files` names datasets.
    assert imported_packages(PACKAGE / 'utils' / 'classnames.py') <= {'utils'}
    assert imported_packages(PACKAGE / 'datasets' / 'cifar100_lt.py') == {'datasets', 'utils'}
    assert imported_packages(PACKAGE / 'engine' / 'hooks' / 'feature_cache_hook.py') == {'datasets', 'models', 'engine'}
