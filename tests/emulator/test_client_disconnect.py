"""A client that goes away mid-request is normal for a server: no traceback on stderr, one journal entry (499)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SERVER_SIDE = textwrap.dedent(
    """
    import json, socket, time
    from finetune_wb.emulator.runner import run_emulator

    with run_emulator(pace=0.01) as emu:
        port = int(emu.base_url.split(":")[2].split("/")[0])
        head = (
            "POST /v1/files HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer sk-test\\r\\n"
            "Content-Type: multipart/form-data; boundary=XX\\r\\nContent-Length: 100000\\r\\n\\r\\n"
        )
        part = '--XX\\r\\nContent-Disposition: form-data; name="purpose"\\r\\n\\r\\nfine-tune\\r\\n--XX\\r\\n'
        with socket.create_connection(("127.0.0.1", port)) as sock:  # half an upload, then gone
            sock.sendall((head + part).encode())
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while not emu.journal and time.monotonic() < deadline:
            time.sleep(0.05)
        print(json.dumps([[e.path, e.status] for e in emu.journal]), flush=True)
    """
)


def test_a_client_that_disconnects_mid_upload_leaves_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVER_SIDE], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == '[["/v1/files", 499]]', done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "ClientDisconnect" not in done.stderr, done.stderr
    assert "ERROR" not in done.stderr, done.stderr
