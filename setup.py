"""Package discovery for the `tinyc` distribution; everything else is in pyproject.toml.

The import package `tinyc` lives in the folder `core/` (and `tinyc.target_specs`
in `target_specs/`), a renaming pyproject.toml's `packages.find` cannot express:
it would name the packages `core.*`. So every package under core/ is found here
and prefixed, and no subpackage can be left out of a wheel by hand.
"""

from setuptools import find_packages, setup

setup(packages=["tinyc", *(f"tinyc.{p}" for p in find_packages("core")), "tinyc.target_specs"])
