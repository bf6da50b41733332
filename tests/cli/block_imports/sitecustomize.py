"""Makes the modules named in $PGRUN_BLOCK_IMPORTS (comma-separated) unimportable in a subprocess,
as if their packages were not installed: put this folder first on PYTHONPATH.

`sys.modules[name] = None` makes `import name` (and `import name.sub`) raise ImportError and
`importlib.util.find_spec(name)` return None, which is what a missing package looks like.
"""

import os
import sys

for _name in filter(None, os.environ.get("PGRUN_BLOCK_IMPORTS", "").split(",")):
    sys.modules[_name] = None  # type: ignore[assignment]
