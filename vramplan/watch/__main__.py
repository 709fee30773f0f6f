"""``python -m vramplan.watch [--out DIR] ... -- CMD ...`` (same arguments as ``vramplan watch``)."""

import sys

from .cli import _standalone

sys.exit(_standalone())
