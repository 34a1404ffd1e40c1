"""The documents the tests and the code cite are in the repository, and
docs/design.md's layer table matches the package's imports."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "fastrena"


def test_every_cited_document_exists():
    cited = set()
    for path in [*ROOT.glob("tests/*.py"), *PACKAGE.glob("*.py")]:
        cited.update(re.findall(r"\b(?:docs/)?[\w-]+\.md\b", path.read_text()))
    missing = sorted(name for name in cited
                     if not (ROOT / name).is_file() and not (ROOT / "docs" / name).is_file())
    assert missing == []


def _layers():
    """Module name -> layer index, from docs/design.md's table."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = text[text.index("| layer | modules |"):].split("\n\n")[0].splitlines()[2:]
    layers = {}
    for i, row in enumerate(table):
        for name in re.findall(r"`(\w+)`", row.split("|")[2]):
            layers[name] = i
    return layers


def _modules():
    """Top-level modules of the package: name -> its files (a subpackage
    is one module: its files import each other freely)."""
    modules = {p.stem: [p] for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    for init in PACKAGE.glob("*/__init__.py"):
        modules[init.parent.name] = sorted(init.parent.glob("*.py"))
    return modules


def _imports(path):
    """(module of the package, name) for each name ``path`` imports from
    another top-level module of the package (anywhere in the file)."""
    depth = 2 if path.parent != PACKAGE else 1
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level != depth:
            continue
        if node.module is None:
            found += [(alias.name, None) for alias in node.names]
        else:
            found += [(node.module.split(".")[0], alias.name) for alias in node.names]
    return found


def test_every_module_is_in_the_layer_table():
    assert set(_modules()) == set(_layers())


def test_modules_import_only_from_their_layer_or_below_and_no_private_name():
    layers = _layers()
    upward, private = [], []
    for here, paths in _modules().items():
        for path in paths:
            for module, name in _imports(path):
                if module in layers and layers[module] > layers[here]:
                    upward.append(f"{here} -> {module}")
                if name is not None and name.startswith("_"):
                    private.append(f"{here} takes {module}.{name}")
    assert private == []
    # Known upward imports, to remove (design.md, "Not yet in this shape").
    assert sorted(upward) == sorted(KNOWN_UPWARD)


#: None: each backend is chosen once per call (fastrena.backends).
KNOWN_UPWARD = []


def test_no_test_module_imports_another():
    # Shared helpers and reference implementations live in helpers.py,
    # fixtures in conftest.py.
    importing = []
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            importing += [f"{path.name} imports {n}" for n in names if n.startswith("test_")]
    assert importing == []


def test_the_package_has_no_import_cycle():
    # Function-local imports included: a cycle hidden in a function is
    # still a cycle.
    modules = _modules()
    edges = {here: {module for path in paths for module, _ in _imports(path)
                    if module in modules and module != here}
             for here, paths in modules.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                raise AssertionError(" -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def _api_page_names():
    """The names docs/api.rst's autosummary tables list (under
    ``currentmodule:: fastrena``)."""
    text = (ROOT / "docs" / "api.rst").read_text()
    return set(re.findall(r"^   (\w+)$", text, re.MULTILINE))


def test_every_public_name_has_an_api_page():
    import fastrena

    # A public name added to fastrena without a page in the site's API
    # reference fails here (the pages are generated from the docstrings).
    assert sorted(set(fastrena.__all__) - _api_page_names()) == []


def _guide_pages():
    """The pages docs/guide.md's table of contents lists, in order."""
    text = (ROOT / "docs" / "guide.md").read_text()
    toctree = text[text.index("```{toctree}"):].split("\n```")[0]
    return [line for line in toctree.splitlines()[1:] if line and not line.startswith(":")]


def test_the_site_renders_the_documents_the_tests_cite():
    # design.md and robustness.md stay where tests read them (docs/), and
    # the site's table of contents takes them from there; the user guide's
    # pages are listed by guide.md.
    toctree = (ROOT / "docs" / "index.rst").read_text()
    listed = set(re.findall(r"^   (\S+)$", toctree, re.MULTILINE))
    for name in ("design", "robustness", "guide", "api", "changelog", "auto_examples/index"):
        assert name in listed, name
    pages = _guide_pages()
    assert len(pages) >= 8 and all((ROOT / "docs" / f"{p}.md").is_file() for p in pages)
    # No Markdown page outside the tables of contents.
    orphans = sorted(path.stem for path in (ROOT / "docs").glob("*.md")
                     if path.stem not in listed and path.stem not in pages)
    assert orphans == []


def test_the_readme_is_a_front_page_linking_the_guide():
    # The README keeps its pitch, the two set-up commands, a short tour and
    # links; the user guide lives in docs/ (each of its pages linked).
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    missing = [page for page in _guide_pages() if f"](docs/{page}.md)" not in readme]
    assert missing == []


def test_every_gallery_example_has_a_title_and_runs_or_says_why_not():
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert len(examples) >= 8
    for path in examples:
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring and docstring.splitlines()[1].startswith("="), path.name
        # sphinx-gallery runs plot_*.py at each build; any other script is
        # shown only, and says so.
        if not path.name.startswith("plot_"):
            assert "not run" in docstring, path.name

