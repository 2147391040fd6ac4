#!/usr/bin/env python3
"""A loopback stand-in for the GitHub Actions runner's ID-token endpoint, for fwseal's tests.

A job with `permissions: id-token: write` gets ACTIONS_ID_TOKEN_REQUEST_URL (which already
carries a query, `?api-version=2.0`) and ACTIONS_ID_TOKEN_REQUEST_TOKEN; a client sends
`GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with `Authorization: bearer $REQUEST_TOKEN`
and receives `{"count": N, "value": "<jwt>"}`. This server does that on 127.0.0.1. The tokens
are minted by the independent test issuer (`issuer.py mint --profile github`, PyJWT), never by
fwseal code.

  actions_token_service.py ISSUER_DIR --kid KID --iss URL [--claim NAME=VALUE]... [--log FILE]

The request token is read from the environment variable ACTIONS_ID_TOKEN_REQUEST_TOKEN (as a
runner holds it), not from argv. Prints one line `listening URL` (URL = the value for
ACTIONS_ID_TOKEN_REQUEST_URL) when ready, then serves until killed. Answers: 401 for a missing
or wrong bearer, 400 without `api-version`, 404 for another path; without `audience` the token's
`aud` is `https://github.com/OWNER`, GitHub's default. --claim is passed to `issuer.py mint`
(e.g. repository=acme/widget, ref=refs/tags/v1.2.0, environment=production). Each request is
appended to --log as one JSON line: {"path", "bearer_ok", "audience", "status"}.
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--kid", required=True)
    p.add_argument("--iss", required=True)
    p.add_argument("--claim", action="append", default=[])
    p.add_argument("--log")
    a = p.parse_args()
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not request_token:
        sys.exit("ACTIONS_ID_TOKEN_REQUEST_TOKEN must be set")
    claims = dict(kv.partition("=")[::2] for kv in a.claim)
    owner = claims.get("repository", "acme/widget").split("/")[0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code: int, body: dict, audience=None, bearer_ok=False) -> None:
            if a.log:
                with open(a.log, "a") as f:
                    f.write(
                        json.dumps(
                            {
                                "path": self.path,
                                "bearer_ok": bearer_ok,
                                "audience": audience,
                                "status": code,
                            }
                        )
                        + "\n"
                    )
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(url.query)
            auth = self.headers.get("Authorization", "")
            scheme, _, cred = auth.partition(" ")
            bearer_ok = scheme.lower() == "bearer" and cred == request_token
            aud = q.get("audience", [None])[0]
            if url.path != "/idtoken":
                return self.reply(404, {"message": "not found"}, aud, bearer_ok)
            if not bearer_ok:
                return self.reply(401, {"message": "invalid request token"}, aud, bearer_ok)
            if "api-version" not in q:
                return self.reply(400, {"message": "api-version missing"}, aud, bearer_ok)
            cmd = [sys.executable, str(HERE / "issuer.py"), "mint", a.dir, "--kid", a.kid]
            cmd += ["--iss", a.iss, "--aud", aud or f"https://github.com/{owner}"]
            cmd += ["--profile", "github"]
            for kv in a.claim:
                cmd += ["--claim", kv]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                return self.reply(500, {"message": r.stderr[-500:]}, aud, bearer_ok)
            return self.reply(200, {"count": 1, "value": r.stdout.strip()}, aud, bearer_ok)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    print(f"listening http://127.0.0.1:{port}/idtoken?api-version=2.0", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(1)
