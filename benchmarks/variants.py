"""The target CLI with proposed hot-path changes applied as patches, to measure them first.

    python benchmarks/variants.py --variants nogc -- --config config.json < stream.singer

Each variant is a small patch of the installed package that stands for a change proposed in
benchmarks/RESULTS.md; run.py --variants runs them next to the unpatched target. A variant
changes no file: it only exists in this process. Every change measured this way so far has
landed in the package (RESULTS.md, "Changes"); `nogc` stays as a measuring tool.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable

from target_openai_capi.target import TargetOpenAICapi


def _nogc() -> None:
    """Upper bound of what the cyclic garbage collector costs: switch it off."""
    gc.disable()


VARIANTS: dict[str, Callable[[], None]] = {
    "nogc": _nogc,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", required=True, help=f"comma-separated: {', '.join(VARIANTS)}")
    args, rest = parser.parse_known_args()
    for name in filter(None, args.variants.split(",")):
        VARIANTS[name]()
    sys.argv = [sys.argv[0], *[a for a in rest if a != "--"]]
    TargetOpenAICapi.cli()


if __name__ == "__main__":
    main()
