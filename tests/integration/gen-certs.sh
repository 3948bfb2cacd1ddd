#!/bin/sh
# Test PKI for the server integration tests, made with the openssl CLI in DIR:
#   ca.{crt,key}        the registered CA          (CN Keel Test CA)
#   server.{crt,key}    ECDSA P-256 server cert, signed by ca; server-chain.pem = leaf + CA
#   server-rsa.{crt,key} RSA-2048 server cert, signed by ca; server-rsa-chain.pem
#   client.{crt,key}    signed by ca, EKU clientAuth        -> registered (pinned)
#   client2.{crt,key}   signed by ca, not pinned at start   -> registered by a SIGHUP test
#   selfsigned.{crt,key} a self-signed client (vCenter-style) -> pinned
#   other-ca.{crt,key}, stranger.{crt,key}  another CA and a client of it -> refused
#   clients/            the pinned certificates (client, selfsigned)
# usage: gen-certs.sh DIR
set -eu
dir=$1
mkdir -p "$dir/clients"
cd "$dir"

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() { # name cn
	ec_key "$1"
	openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

leaf() { # name cn ca eku [san]
	[ -f "$1.key" ] || ec_key "$1"
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
		"$4" "${5:-}" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 2 \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
}

ca ca "Keel Test CA"
ca other-ca "Other CA"
leaf server localhost ca serverAuth,clientAuth "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key 2>/dev/null
leaf server-rsa localhost ca serverAuth "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
cat server.crt ca.crt >server-chain.pem
cat server-rsa.crt ca.crt >server-rsa-chain.pem
leaf client "vcenter-test" ca clientAuth
leaf client2 "vcenter-two" ca clientAuth
leaf stranger "stranger" other-ca clientAuth
ec_key selfsigned
openssl req -x509 -new -key selfsigned.key -subj "/CN=kmipClient20161127094708" -days 2 \
	-out selfsigned.crt
cp client.crt selfsigned.crt clients/
