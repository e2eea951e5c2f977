"""Runs one tool's flag parsing and main in this process on each of a list of argument
lists, the way `cli_flags.run` does, and prints one JSON list of {"args", "status",
"stderr"}: what a user typing each would see (a traceback shows as status "traceback").

argv: TOOL CASES_JSON (a list of argument lists)."""

import contextlib
import importlib.util
import io
import json
import os
import sys
import traceback

from absl import flags

from netadapt_tf.cli import cli_flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tool, cases = sys.argv[1], json.loads(sys.argv[2])
path = os.path.join(REPO, "tools", f"{tool}.py")
spec = importlib.util.spec_from_file_location(f"tool_{tool}", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)  # defines the tool's flags
sys.argv = [path]
results = []
for args in cases:
    flags.FLAGS.unparse_flags()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            argv = cli_flags.parse([path, *args])
            status = cli_flags.guarded(module.main)(argv) or 0
        except SystemExit as done:
            status = done.code
        except BaseException:
            traceback.print_exc()
            status = "traceback"
    results.append({"args": args, "status": status, "stderr": err.getvalue()})
print(json.dumps(results))
