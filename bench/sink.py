"""An SMTP sink for benchmarks: accepts everything, counts messages, writes the count on exit."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        now = time.time()
        self.count += 1
        self.first = self.first or now
        self.last = now
        return "250 OK"


def main() -> None:
    port = int(sys.argv[1])
    out = sys.argv[2]
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()

    def stop(*_: object) -> None:
        controller.stop()
        with open(out, "w") as f:
            f.write(f"{counter.count} {counter.first or 0} {counter.last or 0}\n")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    asyncio.set_event_loop(asyncio.new_event_loop())
    main()
