#!/usr/bin/env bash
# Makes a test CA, a broker certificate and one client certificate per gateway (CN = gateway id,
# which Mosquitto's `use_identity_as_username true` turns into the user name of the ACL's %u).
# For test benches and CI; a production CA keeps its key offline.
#
#   deploy/mosquitto/make-certs.sh OUT_DIR BROKER_HOST GATEWAY_ID...
#   e.g. make-certs.sh ./certs broker.cell-a.example inv-01 inv-02 tx-a
#
# Writes OUT_DIR/ca.{key,pem}, OUT_DIR/broker.{key,pem} (SAN: BROKER_HOST, localhost, 127.0.0.1, ::1)
# and OUT_DIR/<id>.{key,pem}; keys are 0600. An existing CA in OUT_DIR is reused, so more gateways
# can be added later.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 OUT_DIR BROKER_HOST [GATEWAY_ID...]" >&2
  exit 2
fi
out=$1
broker_host=$2
shift 2
days=${CERT_DAYS:-825}
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=p2p-edge test CA" -keyout "$out/ca.key" -out "$out/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME CN EXTENSIONS: a P-256 key and a certificate signed by the CA.
issue() {
  local name=$1 cn=$2 ext=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$out/$name.key" -out "$out/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$out/$name.ext"
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -extfile "$out/$name.ext" -out "$out/$name.pem" 2>/dev/null
  rm -f "$out/$name.csr" "$out/$name.ext"
}

issue broker "$broker_host" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:$broker_host,DNS:localhost,IP:127.0.0.1,IP:::1"

for id in "$@"; do
  if ! [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ ]]; then
    echo "gateway id \"$id\" must be 1-64 of [A-Za-z0-9_-] (it becomes a topic level)" >&2
    exit 2
  fi
  issue "$id" "$id" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
chmod 0644 "$out"/*.pem
echo "certificates in $out: ca.pem broker.pem $(printf '%s.pem ' "$@")" >&2
