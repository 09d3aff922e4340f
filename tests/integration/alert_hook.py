# SPDX-License-Identifier: Apache-2.0
# A tiny webhook receiver for tests/integration/pool_alerts.sh (not a test itself: the runner
# runs only *.sh). Appends every POSTed body, one per line, to LOG; answers 503 to the first
# FAIL_FIRST requests (to exercise the sender's retries), 200 after. Writes its port to PORTFILE.
#   python3 alert_hook.py PORTFILE LOG [FAIL_FIRST]
# With "check LOG STATUS ALERTNAME [K=V...]" it exits 0 when LOG holds an Alertmanager v4
# message with an alert of that status whose labels match, after validating every message.
import http.server
import json
import os
import sys


def check(log, status, name, pairs):
    want = dict(p.split("=", 1) for p in pairs)
    try:
        lines = open(log, "rb").read().splitlines()
    except OSError:
        return 1
    found = False
    for line in lines:
        m = json.loads(line)
        # The Alertmanager webhook_config payload, version 4.
        assert m["version"] == "4" and m["status"] in ("firing", "resolved"), m
        for k in ("groupKey", "receiver", "groupLabels", "commonLabels", "commonAnnotations",
                  "externalURL", "alerts", "truncatedAlerts"):
            assert k in m, k
        for a in m["alerts"]:
            for k in ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL",
                      "fingerprint"):
                assert k in a, k
            assert a["status"] == m["status"], m
            assert len(a["fingerprint"]) == 16
            if a["status"] == "resolved":
                assert a["endsAt"] >= a["startsAt"], a
            else:
                assert a["endsAt"].startswith("0001-"), a
            lab = a["labels"]
            if (a["status"] == status and lab.get("alertname") == name and
                    all(lab.get(k) == v for k, v in want.items())):
                found = True
    return 0 if found else 1


def serve(portfile, log, fail_first):
    state = {"n": 0}

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state["n"] += 1
            if state["n"] <= fail_first:
                self.send_response(503)
                self.end_headers()
                return
            with open(log, "ab") as f:
                f.write(body.replace(b"\n", b" ") + b"\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    s = http.server.HTTPServer(("127.0.0.1", 0), H)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    s.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
