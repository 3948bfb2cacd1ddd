#!/usr/bin/python3
"""Runs the Key Protect emulator; see README.md. Prints one line
"kpemu: listening on https://127.0.0.1:PORT" once it accepts connections."""
import argparse
import os
import ssl
import sys
import tempfile

from kpemu import clock as clock_mod
from kpemu import crypto, iam, model, server


def parse_args(argv):
    p = argparse.ArgumentParser(description="HTTPS emulator of IBM Key Protect and IAM tokens")
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    p.add_argument("--instance", default="12e8c9c2-a162-472d-b7d6-8b9a86b815a6",
                   help="the instance id (Bluemix-Instance) it answers for")
    p.add_argument("--region", default="us-south", help="the region written into CRNs")
    p.add_argument("--apikey", action="append", default=[], metavar="KEY=PRINCIPAL",
                   help="an API key and the IAM principal it maps to (repeatable)")
    p.add_argument("--token-lifetime", type=int, default=3600,
                   help="seconds an access token lives (expires_in)")
    p.add_argument("--tls-dir", help="where to write ca.crt and the server certificate "
                   "(default: a fresh temporary directory)")
    args = p.parse_args(argv)
    apikeys = {}
    for item in args.apikey:
        key, sep, principal = item.partition("=")
        if not sep or not key or not principal:
            p.error("--apikey wants KEY=PRINCIPAL")
        apikeys[key] = principal
    if not apikeys:
        p.error("give at least one --apikey KEY=PRINCIPAL")
    if args.token_lifetime < 1:
        p.error("--token-lifetime must be positive")
    return args, apikeys


def main(argv):
    args, apikeys = parse_args(argv)
    tls_dir = args.tls_dir or tempfile.mkdtemp(prefix="kpemu-")
    os.makedirs(tls_dir, exist_ok=True)
    chain, key, ca = crypto.make_tls(tls_dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(chain, key)
    clock = clock_mod.Clock()
    emu = server.Emulator(model.Instance(args.instance, args.region, clock),
                          iam.Iam(apikeys, args.token_lifetime, clock), clock)
    httpd = server.make_server(emu, args.port, ctx)
    print("kpemu: CA certificate %s" % ca, flush=True)
    print("kpemu: listening on https://127.0.0.1:%d" % httpd.server_address[1], flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
