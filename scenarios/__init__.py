"""Scenario folders (docs/scenarios.md). The demo scenario and its past incidents (``demo/``,
``history/``) ship with the package, so ``sleuth demo`` and ``sleuth serve --demo`` work from an
installed wheel; the other bundled scenarios and the validation sets stay in the source tree."""
