#!/usr/bin/env python3
"""A loopback RFC 3161 TSA that is not fwseal: each POSTed query is answered by
`openssl ts -reply -config CONFIG`. Usage: openssl_tsa_server.py CONFIG; prints the port."""
import http.server
import os
import subprocess
import sys
import tempfile

CONFIG = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > 65536:
            self.send_error(413)
            return
        query = self.rfile.read(n)
        with tempfile.TemporaryDirectory() as d:
            q = os.path.join(d, "q.tsq")
            r = os.path.join(d, "r.tsr")
            with open(q, "wb") as f:
                f.write(query)
            p = subprocess.run(
                ["openssl", "ts", "-reply", "-config", CONFIG, "-queryfile", q, "-out", r],
                capture_output=True,
            )
            if p.returncode != 0 or not os.path.exists(r):
                self.send_error(500, p.stderr.decode(errors="replace")[:200])
                return
            with open(r, "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
