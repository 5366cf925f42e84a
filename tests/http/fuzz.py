#!/usr/bin/env python3
"""HTTP fuzz of the hub from its own OpenAPI documents, with schemathesis.

Starts `uplink demo` (a real hub over TLS on loopback, a connector with a simulated data source,
and a demo app holding an access token from the real consent flow), then lets schemathesis
generate requests from the documents the hub serves:

  * /api/v1/openapi.json  — the app data API, with the demo app's bearer token (which carries
    `events.read`, and the source's grant its events tick, so the alarms-and-events routes are
    fuzzed past the grant check — checked before the fuzz starts), the source's real id (and
    sometimes a made-up one) and its real tag names mixed into generated values;
  * /oauth/openapi.json   — token (every grant type), authorize, revoke, introspect, device
    authorization and metadata, as the demo app (Basic) and anonymously.

Checks: no 5xx, every status, content type, header and body as documented, invalid input refused
with 4xx, and no request left unanswered within its timeout. A fixed number of examples per
operation keeps the run bounded. Afterwards the hub must still answer the app with its token,
and its log must hold no panic.

Usage: tests/http/fuzz.py [--examples N]   (run by ./scripts/test with schemathesis installed)
"""

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REQUEST_TIMEOUT = 15  # seconds; a request unanswered by then is a failure (a hang)
DEMO_START_TIMEOUT = 120


def fail(message):
    print(f"http fuzz: {message}", file=sys.stderr)
    sys.exit(1)


def uplink_binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "debug" / "uplink"
    if not binary.is_file():
        fail(f"{binary} is missing: build it first (cargo build -p uplink-cli --bin uplink)")
    return binary


def schemathesis_binary():
    found = os.environ.get("SCHEMATHESIS") or shutil.which("schemathesis")
    if not found:
        fail("schemathesis is not installed: run ./scripts/test, which installs it")
    return found


def start_demo(data_dir, log):
    demo = subprocess.Popen(
        [str(uplink_binary()), "demo", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
    )
    info_path = data_dir / "demo.json"
    deadline = time.monotonic() + DEMO_START_TIMEOUT
    while not info_path.exists():
        if demo.poll() is not None:
            fail(f"uplink demo exited with {demo.returncode} before it was ready (log: {log.name})")
        if time.monotonic() > deadline:
            demo.kill()
            fail(f"uplink demo was not ready within {DEMO_START_TIMEOUT} s (log: {log.name})")
        time.sleep(0.2)
    return demo, json.loads(info_path.read_text())


def toml_string(value):
    return json.dumps(str(value))


def write_config(path, info, examples, *, api):
    """A schemathesis configuration for one of the two documents."""
    source = info["data_sources"][0]["id"]
    lines = [
        f"tls-verify = {toml_string(info['ca_cert'])}",
        f"request-timeout = {REQUEST_TIMEOUT}",
        # Redirects are checked as answered (303 with Location), never followed: the demo
        # app's redirect URI is not a server.
        "max-redirects = 0",
        "workers = 2",
        "seed = 8",
        "",
        "[generation]",
        f"max-examples = {examples}",
        "",
        "[checks]",
        "not_a_server_error.enabled = true",
        "status_code_conformance.enabled = true",
        "content_type_conformance.enabled = true",
        "response_headers_conformance.enabled = true",
        "response_schema_conformance.enabled = true",
        "negative_data_rejection.enabled = true",
        # Generated OAuth requests carry made-up codes and tokens: their refusal is correct, so
        # "valid data accepted" cannot hold there; the data API's positive cases may meet a
        # made-up source id or tag (404) too.
        "positive_data_acceptance.enabled = false",
        "",
    ]
    if api:
        lines += [
            "[dictionaries.sources]",
            f"values = [{toml_string(source)}]",
            "",
            "[dictionaries.tags]",
            'values = ["sim.sinusoid.1", "sim.sinusoid.2", "sim.ramp.1", "sim.*", "*"]',
            "",
            "[parameters]",
            '"path.source" = { dictionary = "sources", probability = 0.9 }',
            '"query.tag" = { dictionary = "tags", probability = 0.5 }',
            '"query.tags" = { dictionary = "tags", probability = 0.5 }',
            '"query.pattern" = { dictionary = "tags", probability = 0.5 }',
            "",
            "[auth.openapi.bearer]",
            f"bearer = {toml_string(info['access_token'])}",
            "",
            # A live-values stream never ends by itself: each case reads its first events (the
            # snapshot and one change), checks them against the schema and hangs up.
            "[[operations]]",
            'include-operation-id = "subscribe"',
            "max-stream-events = 2",
            "generation.max-examples = 10",
            "",
            # The events stream says nothing until an alarm: a case that opened it reads until
            # its first event or the request timeout, so few cases.
            "[[operations]]",
            'include-operation-id = "subscribeEvents"',
            "max-stream-events = 1",
            "generation.max-examples = 5",
            "",
        ]
    else:
        lines += [
            "[auth.openapi.clientBasic]",
            f"username = {toml_string(info['app']['client_id'])}",
            f"password = {toml_string(info['app']['client_secret'])}",
            "",
        ]
    path.write_text("\n".join(lines))


def run_schemathesis(config, url, report_dir):
    command = [
        schemathesis_binary(),
        "--config-file",
        str(config),
        "run",
        url,
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, cwd=report_dir).returncode


def api_get(info, path):
    """The status and JSON body of the app data API's answer to GET `path` with the token."""
    context = ssl.create_default_context(cafile=info["ca_cert"])
    request = urllib.request.Request(
        f"{info['hub_url']}{path}",
        headers={"Authorization": f"Bearer {info['access_token']}"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=REQUEST_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"null")


def events_are_granted(info):
    """The token reads the source's alarms and events: else the fuzz would meet only 403s."""
    source = info["data_sources"][0]["id"]
    status, body = api_get(info, f"/api/v1/sources/{source}/events?start=*-1h")
    if status != 200 or "events" not in body:
        fail(f"the demo token cannot read events ({status}: {body}); the events routes would be fuzzed as 403 only")


def hub_still_answers(info):
    context = ssl.create_default_context(cafile=info["ca_cert"])
    source = info["data_sources"][0]["id"]
    request = urllib.request.Request(
        f"{info['hub_url']}/api/v1/sources/{source}/snapshot?tags=sim.sinusoid.1",
        headers={"Authorization": f"Bearer {info['access_token']}"},
    )
    with urllib.request.urlopen(request, context=context, timeout=REQUEST_TIMEOUT) as response:
        body = json.loads(response.read())
        if response.status != 200 or "values" not in body:
            fail(f"after the fuzz the hub answered {response.status}: {body}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=60, help="examples per operation")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="uplink-http-fuzz-"))
    log_path = work / "demo.log"
    failures = []
    with open(log_path, "w") as log:
        demo, info = start_demo(work / "demo", log)
        try:
            events_are_granted(info)
            for name, path, api in [
                ("app data API", "/api/v1/openapi.json", True),
                ("OAuth endpoints", "/oauth/openapi.json", False),
            ]:
                print(f"== {name}: {info['hub_url']}{path}", flush=True)
                config = work / f"{'api' if api else 'oauth'}.toml"
                write_config(config, info, args.examples, api=api)
                if run_schemathesis(config, info["hub_url"] + path, work) != 0:
                    failures.append(name)
            if demo.poll() is not None:
                failures.append(f"the hub exited ({demo.returncode}) during the fuzz")
            else:
                hub_still_answers(info)
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGINT)
                try:
                    demo.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    demo.kill()
    hub_log = log_path.read_text(errors="replace")
    if "panicked" in hub_log:
        failures.append(f"the hub panicked (see {log_path})")
    if failures:
        fail("; ".join(failures) + f" (reports and logs in {work})")
    print(f"http fuzz: no 5xx, no schema mismatch, no hang, no panic; the hub still serves ({work})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
