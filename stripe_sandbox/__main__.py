"""``python -m stripe_sandbox``: run the offline Stripe sandbox until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from stripe_sandbox.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_PORT,
    DEFAULT_SECRET_KEY,
    DEFAULT_STATE_DIR,
    DEFAULT_WEBHOOK_SECRET,
    DEFAULT_WEBHOOK_URL,
    SandboxServer,
)
from stripe_sandbox.webhooks import DEFAULT_CONCURRENCY, MAX_CONCURRENCY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where the state is kept between runs")
    parser.add_argument("--webhook-url", default=DEFAULT_WEBHOOK_URL, help="every event is POSTed here ('' for none)")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, help="signs the webhooks (whsec_...)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="the platform's Connect client id (ca_...)")
    parser.add_argument(
        "--secret-key", default=DEFAULT_SECRET_KEY, help="the platform's API key (sk_test_...); others are a 401"
    )
    parser.add_argument("--public-url", default=None, help="the address browsers use (default http://HOST:PORT)")
    parser.add_argument(
        "--delivery-concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"how many webhooks are in flight at once (1 to {MAX_CONCURRENCY})",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    # The tests' own safety net: compare the whole database with memory after every change.
    parser.add_argument("--check-state", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    server = SandboxServer(
        (args.host, args.port),
        state_dir=Path(args.state_dir),
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        client_id=args.client_id,
        secret_key=args.secret_key,
        public_url=args.public_url,
        quiet=args.quiet,
        delivery_concurrency=args.delivery_concurrency,
        check_state=args.check_state,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server.start_delivering()
    print(f"Stripe sandbox listening on {server.public_url} (state in {args.state_dir})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
