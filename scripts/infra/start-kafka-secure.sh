#!/usr/bin/env bash
# start-kafka-secure.sh - a secured Kafka listener on loopback for tests: TLS (server verification, optional
# client certificates) and/or SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER with unsecured JWTs).
#
# Usage:   eval "$(KAFKA_SECURITY=sasl_ssl scripts/infra/start-kafka-secure.sh)"
#          then point a client at $KAFKA_BOOTSTRAP with security.protocol=$KAFKA_SECURITY_PROTOCOL, and
#          ssl.ca.location=$KAFKA_CA / sasl.username=$KAFKA_SASL_USERNAME ... as the mode needs.
# Env:     KAFKA_SECURITY          ssl | sasl_plaintext | sasl_ssl (default sasl_ssl)
#          KAFKA_TLS_CLIENT_AUTH   none | required (default none): with required, TLS clients must present a
#                                  certificate signed by $KAFKA_CA ($KAFKA_CLIENT_CERT/$KAFKA_CLIENT_KEY is one)
#          KAFKA_PORT              the secured port clients use (default 9093)
#          KAFKA_SASL_USERNAME     the one SASL user (default kafkatos3)
#          KAFKA_SASL_PASSWORD     its password (default kafkatos3-secret)
#          KAFKA_SASL_MECHANISMS   mechanisms served, comma-separated (default PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,
#                                  OAUTHBEARER); a client asking for another one is refused by SaslHandshake
#          KAFKATOS3_INFRA_DIR     state dir (default /tmp/kafkatos3-infra): kafka.pid/kafka.log (broker),
#                                  kafka-proxy.pid/kafka-proxy.log (one line per connection: TLS handshake
#                                  failures, "authenticated as", "authentication FAILED: <why>"), tls/, sasl-users
#          KAFKA_STORAGE, TANSU_BIN  passed to start-kafka.sh
# Output:  eval-able KEY=VALUE lines on stdout:
#            KAFKA_BOOTSTRAP=127.0.0.1:PORT  KAFKA_PID  KAFKA_PROXY_PID  KAFKA_SECURITY_PROTOCOL (librdkafka's
#            security.protocol value: SSL, SASL_PLAINTEXT or SASL_SSL)  KAFKA_TLS_CLIENT_AUTH
#            TLS modes:  KAFKA_CA  KAFKA_CLIENT_CERT  KAFKA_CLIENT_KEY (PEM, signed by KAFKA_CA) and, for negative
#                        tests, KAFKA_UNTRUSTED_CA (a CA that did not sign the server certificate) and
#                        KAFKA_UNTRUSTED_CLIENT_CERT/KEY (signed by that other CA)
#            SASL modes: KAFKA_SASL_MECHANISMS  KAFKA_SASL_USERNAME  KAFKA_SASL_PASSWORD
#          Stop with stop-kafka.sh (same KAFKATOS3_INFRA_DIR; it stops the proxy and the broker).
#
# How: the Tansu 0.6.0 test broker cannot serve a usable secured listener itself (its --cert/--key flags
# exclude each other, and its memory/s3 storage never stores SCRAM users: see kafka-secure-proxy.py), so the
# broker runs in plaintext on a private loopback port, advertising the public port, and kafka-secure-proxy.py
# terminates TLS and does the Kafka SASL exchange on the public port. Clients see a secured Kafka broker: TLS
# alerts, SaslHandshake/SaslAuthenticate errors and messages as Apache Kafka sends them.
# The certificates (EC P-256, 30 days) are made with openssl in $KAFKATOS3_INFRA_DIR/tls on the first start there
# and reused by later starts in the same state dir (a broker restart must not change the CA).
# The server certificate is for IP 127.0.0.1 and DNS localhost, so librdkafka's default hostname check passes.
set -euo pipefail
LOG_TAG=start-kafka-secure
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "$HERE/common.sh"

SECURITY="${KAFKA_SECURITY:-sasl_ssl}"
CLIENT_AUTH="${KAFKA_TLS_CLIENT_AUTH:-none}"
PORT="${KAFKA_PORT:-9093}"
SASL_USER="${KAFKA_SASL_USERNAME:-kafkatos3}"
SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-kafkatos3-secret}"
MECHANISMS="${KAFKA_SASL_MECHANISMS:-PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER}"
case "$SECURITY" in
  ssl) PROTOCOL=SSL; TLS=1; SASL=0 ;;
  sasl_plaintext) PROTOCOL=SASL_PLAINTEXT; TLS=0; SASL=1 ;;
  sasl_ssl) PROTOCOL=SASL_SSL; TLS=1; SASL=1 ;;
  *) die "KAFKA_SECURITY must be ssl, sasl_plaintext or sasl_ssl (got '$SECURITY'); plaintext is start-kafka.sh" ;;
esac
case "$CLIENT_AUTH" in
  none) ;;
  required) [[ $TLS == 1 ]] || die "KAFKA_TLS_CLIENT_AUTH=required needs a TLS mode (ssl or sasl_ssl)" ;;
  *) die "KAFKA_TLS_CLIENT_AUTH must be none or required (got '$CLIENT_AUTH')" ;;
esac
[[ "$SASL_USER" != *:* ]] || die "KAFKA_SASL_USERNAME must not contain ':'"

mkdir -p "$KAFKATOS3_INFRA_DIR"
PROXY_PIDFILE="$KAFKATOS3_INFRA_DIR/kafka-proxy.pid"
PROXY_LOG="$KAFKATOS3_INFRA_DIR/kafka-proxy.log"
if [[ -f "$PROXY_PIDFILE" ]] && kill -0 "$(cat "$PROXY_PIDFILE")" 2>/dev/null; then
  die "proxy already running (pid $(cat "$PROXY_PIDFILE"), $PROXY_PIDFILE); stop it first with stop-kafka.sh"
fi
port_open "$PORT" && die "127.0.0.1:$PORT is already in use"
command -v openssl >/dev/null || die "openssl is needed to make the test certificates"

t0=$(now_ms)
# KEY=VALUE, shell-quoted only when the value needs it (so plain values stay readable to non-shell parsers).
out() { if [[ "$2" =~ ^[A-Za-z0-9_./:,@+=-]*$ ]]; then echo "$1=$2"; else printf '%s=%q\n' "$1" "$2"; fi; }

PROXY_ARGS=()
if [[ $TLS == 1 ]]; then
  TLS_DIR="$KAFKATOS3_INFRA_DIR/tls"
  # newkey FILE_PREFIX SUBJECT: an EC P-256 key (PKCS#8 PEM, unencrypted) and a CSR for it.
  newkey() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.csr" -subj "$2" 2>/dev/null
  }
  # ca NAME CN: a self-signed CA certificate.
  ca() {
    newkey "$1" "/CN=$2"
    openssl x509 -req -in "$TLS_DIR/$1.csr" -signkey "$TLS_DIR/$1.key" -days 30 -out "$TLS_DIR/$1.pem" \
      -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n') \
      2>/dev/null
  }
  # leaf NAME CN CA EXTENSIONS: a certificate for NAME.key signed by CA.
  leaf() {
    newkey "$1" "/CN=$2"
    openssl x509 -req -in "$TLS_DIR/$1.csr" -CA "$TLS_DIR/$3.pem" -CAkey "$TLS_DIR/$3.key" -CAcreateserial \
      -days 30 -out "$TLS_DIR/$1.pem" -extfile <(printf '%b' "$4") 2>/dev/null
  }
  certs_usable() {
    local f
    for f in ca untrusted-ca server client untrusted-client; do
      [[ -s "$TLS_DIR/$f.pem" && -s "$TLS_DIR/$f.key" ]] || return 1
      openssl x509 -in "$TLS_DIR/$f.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    done
    openssl verify -CAfile "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/client.pem" >/dev/null 2>&1
  }
fi
# A restart in the same state dir (stop-kafka.sh, then this script again) keeps the certificates, so clients
# configured with the first start's KAFKA_CA still trust the restarted listener.
if [[ $TLS == 1 ]] && certs_usable; then
  log "reusing the certificates in $TLS_DIR"
elif [[ $TLS == 1 ]]; then
  rm -rf "$TLS_DIR" && mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR"
  ca ca "kafkatos3 test CA"
  ca untrusted-ca "kafkatos3 untrusted test CA"
  leaf server localhost ca \
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
  leaf client kafkatos3-client ca 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  leaf untrusted-client kafkatos3-untrusted-client untrusted-ca \
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  rm -f "$TLS_DIR"/*.csr "$TLS_DIR"/*.srl
  certs_usable || die "the certificates just made in $TLS_DIR do not verify"
  log "certificates made in $TLS_DIR ($(( $(now_ms) - t0 )) ms)"
fi
if [[ $TLS == 1 ]]; then
  PROXY_ARGS+=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key")
  [[ "$CLIENT_AUTH" == required ]] && PROXY_ARGS+=(--tls-client-ca "$TLS_DIR/ca.pem")
fi
if [[ $SASL == 1 ]]; then
  USERS="$KAFKATOS3_INFRA_DIR/sasl-users"
  (umask 077 && printf '%s:%s\n' "$SASL_USER" "$SASL_PASSWORD" >"$USERS")
  PROXY_ARGS+=(--sasl-users "$USERS" --sasl-mechanisms "$MECHANISMS")
fi

# The broker: plaintext, on a private loopback port, advertising the public (proxy) port.
BROKER_PORT="$(free_port)"
BROKER_ENV="$(KAFKA_PORT="$BROKER_PORT" KAFKA_ADVERTISED_PORT="$PORT" "$HERE/start-kafka.sh")"
eval "$BROKER_ENV"
cleanup_on_failure() { "$HERE/stop-by-pidfile.sh" "$PROXY_PIDFILE"; "$HERE/stop-by-pidfile.sh" "$KAFKATOS3_INFRA_DIR/kafka.pid"; }

nohup python3 "$HERE/kafka-secure-proxy.py" --listen "127.0.0.1:$PORT" --upstream "127.0.0.1:$BROKER_PORT" \
  "${PROXY_ARGS[@]}" >>"$PROXY_LOG" 2>&1 </dev/null &
echo $! >"$PROXY_PIDFILE"
for _ in $(seq 1 100); do
  if ! kill -0 "$(cat "$PROXY_PIDFILE")" 2>/dev/null; then
    log "ERROR: proxy exited; log follows"; cat "$PROXY_LOG" >&2; cleanup_on_failure; exit 1
  fi
  if port_open "$PORT"; then
    log "secured Kafka ($PROTOCOL, client certificates: $CLIENT_AUTH) ready on 127.0.0.1:$PORT after" \
      "$(( $(now_ms) - t0 )) ms (broker pid $KAFKA_PID on private port $BROKER_PORT, proxy pid" \
      "$(cat "$PROXY_PIDFILE"), proxy log $PROXY_LOG)"
    out KAFKA_BOOTSTRAP "127.0.0.1:$PORT"
    out KAFKA_PID "$KAFKA_PID"
    out KAFKA_PROXY_PID "$(cat "$PROXY_PIDFILE")"
    out KAFKA_SECURITY_PROTOCOL "$PROTOCOL"
    out KAFKA_TLS_CLIENT_AUTH "$CLIENT_AUTH"
    if [[ $TLS == 1 ]]; then
      out KAFKA_CA "$TLS_DIR/ca.pem"
      out KAFKA_CLIENT_CERT "$TLS_DIR/client.pem"
      out KAFKA_CLIENT_KEY "$TLS_DIR/client.key"
      out KAFKA_UNTRUSTED_CA "$TLS_DIR/untrusted-ca.pem"
      out KAFKA_UNTRUSTED_CLIENT_CERT "$TLS_DIR/untrusted-client.pem"
      out KAFKA_UNTRUSTED_CLIENT_KEY "$TLS_DIR/untrusted-client.key"
    fi
    if [[ $SASL == 1 ]]; then
      out KAFKA_SASL_MECHANISMS "$MECHANISMS"
      out KAFKA_SASL_USERNAME "$SASL_USER"
      out KAFKA_SASL_PASSWORD "$SASL_PASSWORD"
    fi
    exit 0
  fi
  sleep 0.1
done
log "ERROR: proxy not reachable after 10 s; stopping it and the broker"
cleanup_on_failure
exit 1
