#!/usr/bin/env bash
# make-test-ca.sh: a private certificate authority and node certificates for rayc's TLS (tests,
# trying TLS out, small clusters). Every gRPC channel of a cluster runs mutual TLS when the daemons,
# `rayc` and drivers are given --tls-cert/--tls-key/--tls-ca (or RAYC_TLS_CERT/_KEY/_CA): each side
# shows a certificate signed by the CA, and clients check that the server's certificate names the
# address they dialled, so a node's certificate needs an IP subjectAltName for its
# --node-ip-address.
#
#   make-test-ca.sh DIR                  DIR/ca.pem + ca.key (made if missing) and DIR/node.pem +
#                                        node.key, valid for 127.0.0.1, ::1 and localhost
#   make-test-ca.sh DIR NAME ADDR...     DIR/NAME.pem + NAME.key signed by DIR's CA (made if
#                                        missing), valid for each ADDR (an IP or a DNS name) and
#                                        for 127.0.0.1, ::1 and localhost
#
# Example, two hosts:
#   deploy/make-test-ca.sh /etc/rayc/tls head 10.0.0.1
#   deploy/make-test-ca.sh /etc/rayc/tls worker1 10.0.0.2     # copy ca.pem, worker1.* to 10.0.0.2
#   rayc start --head --node-ip-address 10.0.0.1 --tls-cert /etc/rayc/tls/head.pem \
#     --tls-key /etc/rayc/tls/head.key --tls-ca /etc/rayc/tls/ca.pem
#
# Keys are ECDSA P-256, written 0600; certificates are valid for DAYS days (default 365). This is a
# test CA: keep ca.key away from the cluster's hosts in real use, or use your organisation's CA.
# Needs the openssl command (Debian package openssl; deploy/install-deps.sh installs it).
set -euo pipefail
DIR=${1:?usage: make-test-ca.sh DIR [NAME ADDR...]}
NAME=${2:-node}
shift $(( $# >= 2 ? 2 : 1 ))
DAYS=${DAYS:-365}
command -v openssl >/dev/null || { echo "make-test-ca.sh: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
case $NAME in */*|.*|"") echo "make-test-ca.sh: bad name '$NAME'" >&2; exit 2;; esac
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077

if [ ! -s "$DIR/ca.pem" ] || [ ! -s "$DIR/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days "$DAYS" \
    -subj "/CN=rayc test CA" -keyout "$DIR/ca.key" -out "$DIR/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san="IP:127.0.0.1,IP:::1,DNS:localhost"
for a in "$@"; do
  if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then san="$san,IP:$a"; else san="$san,DNS:$a"; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/ext.cnf" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -subj "/CN=rayc $NAME" \
  -keyout "$DIR/$NAME.key" -out "$tmp/$NAME.csr" 2>/dev/null
openssl x509 -req -in "$tmp/$NAME.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -sha256 -days "$DAYS" -extfile "$tmp/ext.cnf" -out "$DIR/$NAME.pem" 2>/dev/null
chmod 600 "$DIR/$NAME.key" "$DIR/ca.key"
chmod 644 "$DIR/$NAME.pem" "$DIR/ca.pem"
echo "make-test-ca.sh: $DIR/$NAME.pem (key $DIR/$NAME.key) for $san, CA $DIR/ca.pem"
