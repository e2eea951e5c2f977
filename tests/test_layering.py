"""Imports point down: every import under netadapt_tf/ is checked against the layer list in
README.md, the one place the order is written. A module may import its own subpackage and
the subpackages on earlier lines of the list, never one on its own line or a later one."""

import ast
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "netadapt_tf"
START, END = "<!-- layers: start -->", "<!-- layers: end -->"


def read_layers(readme: str) -> dict[str, int]:
    """Subpackage -> its layer (1 is the bottom), from README's numbered list between the
    layer markers."""
    if START not in readme or END not in readme:
        raise ValueError(f"README.md: no layer list between {START!r} and {END!r}")
    body = readme.split(START, 1)[1].split(END, 1)[0]
    layers = {}
    for line in body.strip().splitlines():
        match = re.fullmatch(r"(\d+)\. (.+)", line.strip())
        if match is None:
            raise ValueError(f"README.md layer list: {line!r} is not 'N. `name`, `name`'")
        for name in re.findall(r"`(\w+)`", match[2]):
            if name in layers:
                raise ValueError(f"README.md layer list: {name!r} is on two lines")
            layers[name] = int(match[1])
    return layers


def _imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The netadapt_tf modules one import statement names (relative ones resolved); for
    `from netadapt_tf import a, b`, the subpackages a and b."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_package else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    if base == "netadapt_tf":
        return [f"netadapt_tf.{alias.name}" for alias in node.names]
    return [base]


def upward_imports(
    module: str, source: str, layers: dict[str, int], is_package: bool = False
) -> list[str]:
    """One line per import of `module` (dotted, under netadapt_tf) that points up or
    sideways in `layers`, naming the module, the import and the rule it breaks. Imports
    inside functions count too: a lazy import is still a dependency."""
    own = module.split(".")[1] if module.count(".") >= 1 else None
    if own is None or own not in layers:
        return [f"{module}: subpackage {own!r} is not in README.md's layer list"]
    problems = []
    for node in ast.walk(ast.parse(source)):
        for name in _imported_modules(node, module, is_package):
            parts = name.split(".")
            if parts[0] != "netadapt_tf" or len(parts) < 2 or parts[1] == own:
                continue
            target = parts[1]
            if target not in layers:
                problems.append(
                    f"{module} imports {name} (line {node.lineno}): subpackage {target!r} is "
                    "not in README.md's layer list"
                )
            elif layers[target] >= layers[own]:
                below = ", ".join(sorted(n for n, lay in layers.items() if lay < layers[own]))
                problems.append(
                    f"{module} imports {name} (line {node.lineno}): {own} (layer "
                    f"{layers[own]}) may import only layers below it ({below or 'none'}); "
                    f"{target} is layer {layers[target]}"
                )
    return problems


@pytest.fixture(scope="module")
def layers():
    return read_layers((REPO / "README.md").read_text())


def test_every_subpackage_has_a_layer(layers):
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert sorted(subpackages - set(layers)) == []
    assert sorted(set(layers) - subpackages) == []


def test_imports_point_down(layers):
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).with_suffix("")
        if len(relative.parts) < 3:  # netadapt_tf/__init__.py imports nothing
            continue
        is_package = path.name == "__init__.py"
        parts = relative.parts[:-1] if is_package else relative.parts
        module = ".".join(parts)
        problems += upward_imports(module, path.read_text(), layers, is_package)
    assert problems == []


LAYERS = {"common": 1, "space": 2, "supernet": 3, "graphs": 4, "metrics": 4, "shipping": 5}


@pytest.mark.parametrize(
    "source",
    [
        "from netadapt_tf.graphs.subnet_graph import layer_name\n",
        "import netadapt_tf.graphs.export\n",
        "from netadapt_tf import graphs\n",
        "def f():\n    from ..graphs import export\n",
    ],
)
def test_checker_names_an_upward_import(source):
    problems = upward_imports("netadapt_tf.supernet.network", source, LAYERS)
    assert len(problems) == 1
    assert problems[0].startswith("netadapt_tf.supernet.network imports netadapt_tf.graphs")
    assert "supernet (layer 3) may import only layers below it (common, space); " in problems[0]
    assert problems[0].endswith("graphs is layer 4")


def test_checker_refuses_a_sideways_import_and_passes_downward_ones():
    sideways = upward_imports(
        "netadapt_tf.metrics.host", "from . import x\nimport netadapt_tf.graphs\n", LAYERS
    )
    assert sideways == [
        "netadapt_tf.metrics.host imports netadapt_tf.graphs (line 2): metrics (layer 4) may "
        "import only layers below it (common, space, supernet); graphs is layer 4"
    ]
    down = "from netadapt_tf.space import arch\nfrom netadapt_tf.metrics import base\nimport os\n"
    assert upward_imports("netadapt_tf.shipping.tflite", down, LAYERS) == []
    unknown = upward_imports("netadapt_tf.space.x", "import netadapt_tf.nowhere.y\n", LAYERS)
    assert unknown == [
        "netadapt_tf.space.x imports netadapt_tf.nowhere.y (line 1): subpackage 'nowhere' is "
        "not in README.md's layer list"
    ]


def test_layer_list_errors():
    with pytest.raises(ValueError, match="no layer list"):
        read_layers("# README\n")
    with pytest.raises(ValueError, match="'space' is on two lines"):
        read_layers(f"{START}\n1. `space`\n2. `space`\n{END}\n")
    assert read_layers(f"{START}\n1. `common`\n2. `space`, `data`\n{END}") == {
        "common": 1,
        "space": 2,
        "data": 2,
    }
