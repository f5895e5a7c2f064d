"""AWS emulator for the integration tests: moto's server with ses_ext loaded.

    python emulator.py --host 127.0.0.1 --port 4566

Serves every moto service on one port (SES v2, SNS, SQS, CloudWatch, STS,
IAM, ...), plus the admin API under /_emulator/, in the foreground until
SIGTERM or SIGINT.
"""

import argparse
import os
import signal
import sys

from werkzeug.serving import run_simple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ses_ext  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # moto builds URLs back to itself (e.g. SQS queue URLs) from this.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    ses_ext.install()
    app = ses_ext.wrap(DomainDispatcherApplication(create_backend_app))

    def stop(_signum, _frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"aws-emulator: listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
