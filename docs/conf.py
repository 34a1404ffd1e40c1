"""Sphinx configuration of fastrena's documentation site.

Build (from the repository's root, with the ``doc`` extra installed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Warnings are errors (``-W``): a docstring that numpydoc cannot parse, a
broken cross-reference or a gallery example that fails breaks the build.
"""

import os
import sys

import fastrena

# gallery_hooks, beside this file.
sys.path.insert(0, os.path.dirname(__file__))

project = "fastrena"
author = "fastrena developers"
copyright = "fastrena developers"  # noqa: A001 (Sphinx's name)
# The installed distribution's version (git tags through setuptools-scm).
release = fastrena.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated/*.examples", "sg_execution_times.rst"]

# API pages from the docstrings: one page per public name (api.rst).
autosummary_generate = True
# scikit-learn adds metadata-routing setters to every estimator class;
# they are its documentation's to explain.
autodoc_default_options = {
    "exclude-members": "set_fit_request, set_transform_request, "
                       "set_inverse_transform_request, set_output",
}
# The signatures show the annotations; the numpydoc sections say the rest.
autodoc_typehints = "none"
# A class's page documents its own methods (templates in _templates/:
# autoclass with :members:); numpydoc's table of them links there, not to
# stub pages. Inherited scikit-learn methods (get_params...) are left to
# scikit-learn's documentation.
templates_path = ["_templates"]
numpydoc_show_class_members = True
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False

# design.md and robustness.md are read by tests at docs/*.md: the site
# renders them from there (MyST); their headings become link targets.
myst_heading_anchors = 3

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "nilearn": ("https://nilearn.github.io/stable", None),
}
# No network on CI's build machines: intersphinx links stay plain text
# rather than failing the build (FASTRENA_DOC_INTERSPHINX=1 fetches them).
if not os.environ.get("FASTRENA_DOC_INTERSPHINX"):
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Every example runs at each build, on data bundled with scikit-image
    # and nilearn (no download): plot_*.py only, so that a script meant to
    # be read, not run (Dask on a cluster), can be shown without running.
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # An example that raises fails the build; so does one that warns
    # (escalate_warnings below).
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib", "gallery_hooks.escalate_warnings"),
    "reset_modules_order": "both",
}

html_theme = "pydata_sphinx_theme"
html_title = f"fastrena {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []
