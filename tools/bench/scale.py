"""Entry point of tools/bench/scale.sh: the driver is the package tools/bench/scale/ (parameters: its docstring)."""
import sys
from scale.__main__ import main  # the package next to this file (a package shadows a module of its name)

sys.exit(main())
