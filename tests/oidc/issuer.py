#!/usr/bin/env python3
"""An independent OIDC issuer for fwseal's tests: keys from pyca `cryptography`, tokens from
PyJWT, JWKS (+ discovery) served over HTTP on loopback. Nothing here is fwseal code: the daemon
must accept what this mints exactly as it would accept GitHub's or GitLab's tokens.

Stable CLI (other tests and the demo use it; keep it compatible):

  issuer.py keygen DIR --kid KID [--alg RS256|ES256] [--unpublished]
      Create a key (RSA-2048 for RS256, P-256 for ES256) as DIR/keys/KID.pem and publish its
      public half in DIR/jwks.json (unless --unpublished: a key the issuer signs with but does
      not publish, for "unknown kid" tests). Idempotent for an existing KID.

  issuer.py unpublish DIR --kid KID
      Remove KID from DIR/jwks.json (the private key stays: tokens can still be minted with it).

  issuer.py jwks DIR
      Print the published JWKS (the `jwks_file` content for offline deployments).

  issuer.py serve DIR [--port 0] [--issuer URL]
      Serve on 127.0.0.1: GET /.well-known/openid-configuration ({"issuer", "jwks_uri"}) and
      GET /jwks (DIR/jwks.json, re-read on every request, so keygen/unpublish rotate live).
      Prints one line `listening http://127.0.0.1:PORT` on stdout when ready, then serves until
      killed. The issuer URL in discovery is --issuer or that URL. Every GET is appended to
      DIR/requests.log (path only), so tests can count fetches. If DIR/down exists, /jwks and
      discovery answer 503.

  issuer.py mint DIR --kid KID --iss URL --aud AUD [--profile github|gitlab|human]
                 [--claim NAME=VALUE]... [--drop NAME]... [--iat-in S] [--nbf-in S]
                 [--exp-in S] [--jti ID] [--alg ALG] [--attack none|hs256-pubkey|tamper]
      Print one signed JWT. Times are relative to now (seconds; negative = past): defaults
      iat -5, nbf -5, exp +300. --profile fills the claim set the platform documents:
        github: sub repo:OWNER/REPO:ref:REF, repository, repository_owner, repository_id,
                ref, ref_type, sha, workflow, workflow_ref, job_workflow_ref, run_id,
                run_number, run_attempt, actor, event_name, runner_environment
                (defaults acme/widget, refs/tags/v1.2.0; override with --claim)
        gitlab: sub project_path:G/P:ref_type:T:ref:R, project_path, project_id,
                namespace_path, namespace_id, ref, ref_type, ref_protected, sha, pipeline_id,
                pipeline_source, job_id, ci_config_ref_uri, ci_config_sha, user_login,
                runner_environment (defaults acme/widget, tag v1.2.0)
        human:  sub, email, email_verified, name (defaults alice / alice@acme.example)
      --claim NAME=VALUE sets a string claim (NAME=json:VALUE sets a JSON value); --drop
      removes one. Claims derived from others (sub, workflow_ref, ...) are recomputed from the
      overridden repository/ref unless set explicitly. --alg overrides the header alg of a
      normal signature (e.g. RS384). Attacks: `none` (alg none, empty signature),
      `hs256-pubkey` (HS256 with the key's public PEM as the HMAC secret), `tamper` (a valid
      token whose payload is then altered without re-signing).

Requires: cryptography, PyJWT (installed by `cargo xtask deps`).
"""

import argparse
import base64
import http.server
import json
import os
import secrets
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def key_path(d: Path, kid: str) -> Path:
    return d / "keys" / f"{kid}.pem"


def load_private(d: Path, kid: str):
    return serialization.load_pem_private_key(key_path(d, kid).read_bytes(), password=None)


def key_alg(key) -> str:
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"


def public_jwk(key, kid: str) -> dict:
    alg = key_alg(key)
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


def read_jwks(d: Path) -> dict:
    p = d / "jwks.json"
    return json.loads(p.read_text()) if p.exists() else {"keys": []}


def write_jwks(d: Path, jwks: dict) -> None:
    tmp = d / "jwks.json.tmp"
    tmp.write_text(json.dumps(jwks, indent=1))
    os.replace(tmp, d / "jwks.json")


def cmd_keygen(a) -> None:
    d = Path(a.dir)
    (d / "keys").mkdir(parents=True, exist_ok=True)
    p = key_path(d, a.kid)
    if not p.exists():
        if a.alg == "ES256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        p.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    key = load_private(d, a.kid)
    jwks = read_jwks(d)
    jwks["keys"] = [k for k in jwks["keys"] if k.get("kid") != a.kid]
    if not a.unpublished:
        jwks["keys"].append(public_jwk(key, a.kid))
    write_jwks(d, jwks)


def cmd_unpublish(a) -> None:
    d = Path(a.dir)
    jwks = read_jwks(d)
    jwks["keys"] = [k for k in jwks["keys"] if k.get("kid") != a.kid]
    write_jwks(d, jwks)


def cmd_jwks(a) -> None:
    print(json.dumps(read_jwks(Path(a.dir)), indent=1))


def cmd_serve(a) -> None:
    d = Path(a.dir)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with open(d / "requests.log", "a") as f:
                f.write(self.path + "\n")
            base = a.issuer or f"http://127.0.0.1:{self.server.server_address[1]}"
            if (d / "down").exists():
                return self.reply(503, {"error": "down"})
            if self.path == "/.well-known/openid-configuration":
                return self.reply(
                    200,
                    {
                        "issuer": base,
                        "jwks_uri": f"http://127.0.0.1:{self.server.server_address[1]}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                    },
                )
            if self.path == "/jwks":
                return self.reply(200, read_jwks(d))
            return self.reply(404, {"error": "not found"})

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"listening http://127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


def profile_claims(profile: str, over: dict) -> dict:
    """The claim set a platform documents, with `over` applied before derived claims."""
    c = {}
    if profile == "github":
        repo = over.get("repository", "acme/widget")
        ref = over.get("ref", "refs/tags/v1.2.0")
        owner = repo.split("/")[0]
        wf = f"{repo}/.github/workflows/release.yml@{ref}"
        c = {
            "sub": f"repo:{repo}:ref:{ref}",
            "repository": repo,
            "repository_owner": owner,
            "repository_id": "74",
            "repository_owner_id": "65",
            "ref": ref,
            "ref_type": "tag" if ref.startswith("refs/tags/") else "branch",
            "sha": "a" * 40,
            "workflow": "release",
            "workflow_ref": wf,
            "job_workflow_ref": wf,
            "run_id": "5551234",
            "run_number": "17",
            "run_attempt": "1",
            "actor": "octocat",
            "event_name": "push",
            "runner_environment": "github-hosted",
        }
    elif profile == "gitlab":
        path = over.get("project_path", "acme/widget")
        ref = over.get("ref", "v1.2.0")
        rtype = over.get("ref_type", "tag")
        host = over.get("_host", "gitlab.example.com")
        full = f"refs/{'tags' if rtype == 'tag' else 'heads'}/{ref}"
        c = {
            "sub": f"project_path:{path}:ref_type:{rtype}:ref:{ref}",
            "project_path": path,
            "project_id": "28",
            "namespace_path": path.split("/")[0],
            "namespace_id": "1",
            "ref": ref,
            "ref_type": rtype,
            "ref_protected": "true",
            "sha": "b" * 40,
            "pipeline_id": "455",
            "pipeline_source": "push",
            "job_id": "1123",
            "ci_config_ref_uri": f"{host}/{path}//.gitlab-ci.yml@{full}",
            "ci_config_sha": "b" * 40,
            "user_login": "alice",
            "runner_environment": "gitlab-hosted",
        }
    elif profile == "human":
        sub = over.get("sub", "alice")
        c = {
            "sub": sub,
            "email": over.get("email", f"{sub}@acme.example"),
            "email_verified": True,
            "name": sub.capitalize(),
        }
    over = {k: v for k, v in over.items() if not k.startswith("_")}
    c.update(over)
    return c


def cmd_mint(a) -> None:
    d = Path(a.dir)
    now = int(time.time())
    over = {}
    for kv in a.claim:
        name, _, value = kv.partition("=")
        over[name] = json.loads(value[5:]) if value.startswith("json:") else value
    claims = profile_claims(a.profile, over) if a.profile else dict(over)
    claims.update(
        {
            "iss": a.iss,
            "aud": a.aud,
            "iat": now + a.iat_in,
            "nbf": now + a.nbf_in,
            "exp": now + a.exp_in,
            "jti": a.jti or secrets.token_hex(16),
        }
    )
    for k, v in over.items():
        if k in ("iss", "aud", "iat", "nbf", "exp", "jti"):
            claims[k] = v
    for k in a.drop:
        claims.pop(k, None)
    key = load_private(d, a.kid)
    headers = {"kid": a.kid}
    if a.attack == "none":
        header = {"alg": "none", "typ": "JWT", "kid": a.kid}
        token = (
            b64url(json.dumps(header).encode())
            + "."
            + b64url(json.dumps(claims).encode())
            + "."
        )
    elif a.attack == "hs256-pubkey":
        # The classic key-confusion attack: HMAC keyed with the RSA public key PEM (PyJWT
        # refuses to do this itself, so the MAC comes from pyca directly).
        secret = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": a.kid}
        signing_input = (
            b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        )
        h = hmac.HMAC(secret, hashes.SHA256())
        h.update(signing_input.encode())
        token = signing_input + "." + b64url(h.finalize())
    else:
        alg = a.alg or key_alg(key)
        token = jwt.encode(claims, key, algorithm=alg, headers=headers)
        if a.attack == "tamper":
            head, payload, sig = token.split(".")
            body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            for k in ("repository", "project_path", "sub"):
                if k in body:
                    body[k] = body[k] + "-evil"
                    break
            token = ".".join([head, b64url(json.dumps(body).encode()), sig])
    print(token)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen")
    k.add_argument("dir")
    k.add_argument("--kid", required=True)
    k.add_argument("--alg", default="RS256", choices=["RS256", "ES256"])
    k.add_argument("--unpublished", action="store_true")
    u = sub.add_parser("unpublish")
    u.add_argument("dir")
    u.add_argument("--kid", required=True)
    j = sub.add_parser("jwks")
    j.add_argument("dir")
    s = sub.add_parser("serve")
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--issuer")
    m = sub.add_parser("mint")
    m.add_argument("dir")
    m.add_argument("--kid", required=True)
    m.add_argument("--iss", required=True)
    m.add_argument("--aud", required=True)
    m.add_argument("--profile", choices=["github", "gitlab", "human"])
    m.add_argument("--claim", action="append", default=[])
    m.add_argument("--drop", action="append", default=[])
    m.add_argument("--iat-in", type=int, default=-5)
    m.add_argument("--nbf-in", type=int, default=-5)
    m.add_argument("--exp-in", type=int, default=300)
    m.add_argument("--jti")
    m.add_argument("--alg")
    m.add_argument("--attack", choices=["none", "hs256-pubkey", "tamper"])
    a = p.parse_args()
    {
        "keygen": cmd_keygen,
        "unpublish": cmd_unpublish,
        "jwks": cmd_jwks,
        "serve": cmd_serve,
        "mint": cmd_mint,
    }[a.cmd](a)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(1)
