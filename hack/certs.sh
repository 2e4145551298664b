#!/usr/bin/env bash
# Example certificates for sparkd's TLS (spark.ssl.*): a CA and one
# certificate per host, each valid for server and client use (so it also
# serves mutual TLS). Not for production: the CA key sits next to them.
#
#   hack/certs.sh [DIR] [HOST...]     (make certs CERTS_DIR=conf/ssl CERT_HOSTS="m1 m2 w1")
#
# DIR/ca.pem is the trust store (spark.ssl.trustStore); DIR/<host>.pem and
# DIR/<host>-key.pem are spark.ssl.certChain and spark.ssl.privateKey.
set -euo pipefail
dir=${1:-conf/ssl}
shift || true
hosts=("$@")
[[ ${#hosts[@]} -gt 0 ]] || hosts=(localhost)
mkdir -p "$dir"
umask 077
if [[ ! -f $dir/ca.pem ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=sparkd example CA" \
    -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
fi
for h in "${hosts[@]}"; do
  san="DNS:$h,DNS:localhost,IP:127.0.0.1"
  if [[ $h =~ ^[0-9.]+$ ]]; then san="IP:$h,DNS:localhost,IP:127.0.0.1"; fi
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$h" -keyout "$dir/$h-key.pem" -out "$dir/$h.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$h.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial -days 825 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$san") \
    -out "$dir/$h.pem" 2>/dev/null
  rm -f "$dir/$h.csr"
  echo "$dir/$h.pem, $dir/$h-key.pem (SAN $san)"
done
echo "trust store: $dir/ca.pem"
