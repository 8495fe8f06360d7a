"""A stand-in for a trainer module, run as ``python -m stage_stub ARGUMENTS`` by the tests of
``sfgym train pretrained --jobs``: it records its arguments in ``--out`` and marks the run complete
(exit code 3 and no run with ``--fail``; marked interrupted with ``--interrupt``)."""

import json
import sys
from pathlib import Path

arguments = sys.argv[1:]
if "--fail" in arguments:
    sys.exit(3)
run = Path(arguments[arguments.index("--out") + 1])
run.mkdir(parents=True, exist_ok=True)
(run / "arguments.json").write_text(json.dumps(arguments))
state = "interrupted" if "--interrupt" in arguments else "complete"
(run / "status.json").write_text(json.dumps({"trainer": "rl", "state": state}))
