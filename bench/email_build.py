"""Email throughput: building messages, and sending them to a local aiosmtpd sink.

    PYTHONPATH=server/src python bench/email_build.py [--messages 2000]

Prints messages/s for: render_invitation; build_message (hand-assembled bytes) against the
stdlib email package (EmailMessage + policy.SMTP, the baseline of
docs' performance notes); a bare aiosmtplib sendmail loop over one connection; and
SmtpTransport.send, sequential (one pooled connection) and concurrent (max_connections=4).
The sink runs in a separate process (python -m aiosmtpd, Sink handler) so that it does
not share the GIL with the client. The machine is noisy: compare figures within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import aiosmtplib
from avara_viewer.email import SmtpConfig, SmtpTransport, build_message, render_invitation

FROM = "no-reply@viewer.example"
MAIL_FROM = f"Avara Viewer <{FROM}>"


def rendered():
    return render_invitation(
        clinic_name="Northside Imaging",
        inviter_name="Maria Lopez",
        first_name="Sarah",
        last_name="Johnson",
        clinic_role="Radiologist",
        level="member",
        has_dashboard_access=True,
        accept_url="https://viewer.example/invitations/accept?token=Zk3q9_Xb-4tPqA1rLw8sYcJ2mN5vH7dE",
        expires_at=datetime.now(UTC) + timedelta(days=7),
    )


def rate(n: int, fn: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def stdlib_build(mail, i: int) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["Date"] = datetime.now(UTC)
    msg["From"] = MAIL_FROM
    msg["To"] = f"user{i}@hospital.org"
    msg["Subject"] = mail.subject
    msg["Message-ID"] = f"<outbox-{i}@avara-viewer>"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg.as_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("aiosmtpd sink did not start")


async def send_benchmarks(port: int, n: int, messages: list[bytes]) -> dict[str, float]:
    results: dict[str, float] = {}

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    start = time.perf_counter()
    for i in range(n):
        await client.sendmail(FROM, [f"user{i}@hospital.org"], messages[i])
    results["bare aiosmtplib sendmail, 1 connection, pre-built bytes"] = n / (
        time.perf_counter() - start
    )
    await client.quit()

    async with SmtpTransport(SmtpConfig("127.0.0.1", port), max_connections=1) as transport:
        start = time.perf_counter()
        for i in range(n):
            await transport.send(mail_from=FROM, rcpt=f"user{i}@hospital.org", message=messages[i])
        results["SmtpTransport.send, sequential (1 connection)"] = n / (time.perf_counter() - start)

    async with SmtpTransport(SmtpConfig("127.0.0.1", port), max_connections=4) as transport:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                transport.send(mail_from=FROM, rcpt=f"user{i}@hospital.org", message=messages[i])
                for i in range(n)
            )
        )
        elapsed = time.perf_counter() - start
        results[
            f"SmtpTransport.send, {n} concurrent (4 connections at a time; "
            f"{transport.connections_opened} opened, recycled every 100 msgs)"
        ] = n / elapsed

    mail = rendered()
    async with SmtpTransport(SmtpConfig("127.0.0.1", port), max_connections=1) as transport:
        start = time.perf_counter()
        for i in range(n):
            data = build_message(
                mail_from=MAIL_FROM,
                to=f"user{i}@hospital.org",
                subject=mail.subject,
                text=mail.text,
                html=mail.html,
                message_id=f"outbox-{i}@avara-viewer",
            )
            await transport.send(mail_from=FROM, rcpt=f"user{i}@hospital.org", message=data)
        results["build_message + SmtpTransport.send, sequential"] = n / (
            time.perf_counter() - start
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    n = parser.parse_args().messages

    mail = rendered()
    rows: dict[str, float] = {}
    rows["render_invitation (Jinja2: subject, text, html)"] = rate(n, lambda i: rendered())
    rows["build_message (hand-assembled, quoted-printable)"] = rate(
        n,
        lambda i: build_message(
            mail_from=MAIL_FROM,
            to=f"user{i}@hospital.org",
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            message_id=f"outbox-{i}@avara-viewer",
        ),
    )
    rows["stdlib EmailMessage(policy=SMTP).as_bytes() (baseline)"] = rate(
        n, lambda i: stdlib_build(mail, i)
    )
    messages = [
        build_message(
            mail_from=MAIL_FROM,
            to=f"user{i}@hospital.org",
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            message_id=f"outbox-{i}@avara-viewer",
        )
        for i in range(n)
    ]
    print(f"message size: {len(messages[0])} bytes")

    port = free_port()
    sink = start_sink(port)
    try:
        rows.update(asyncio.run(send_benchmarks(port, n, messages)))
    finally:
        sink.terminate()
        sink.wait(timeout=10)

    width = max(map(len, rows))
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:>10,.0f} msgs/s")


if __name__ == "__main__":
    main()
