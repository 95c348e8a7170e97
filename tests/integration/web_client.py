"""A small WebSocket client for the browser console's tests, with the standard library only.

It speaks just enough of RFC 6455 to log in and watch: TLS (the gateway's certificate is
self-signed in tests, so it is not verified unless a CA file is given), `GET /ws` with the
upgrade headers, the Origin and the `xcg.v1` subprotocol, masked frames out, frames in. It
also sends what a browser never would (raw bytes, unmasked or oversized frames), for the
bad-input tests.
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"upgrade refused: {status}")
        self.status = status
        self.headers = headers
        self.body = body


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """One frame as a client sends it (masked unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def connect_unix(path, timeout):
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    raw.connect(path)
    return raw


class WebClient:
    """`WebClient(host, port)` connects (TLS unless `tls=False`; a host starting with "/" is a
    unix socket's path); `upgrade()` opens /ws."""

    def __init__(self, host, port, tls=True, server_name=None, cafile=None, timeout=10):
        self.timeout = timeout
        raw = connect_unix(host, timeout) if host.startswith("/") else \
            socket.create_connection((host, port), timeout=timeout)
        if tls:
            context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.sock = context.wrap_socket(raw, server_hostname=server_name or host)
        else:
            self.sock = raw
        self.buffer = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- bytes ---------------------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def _take(self, n, deadline):
        while len(self.buffer) < n:
            self._fill(deadline)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    # --- HTTP ----------------------------------------------------------------------------

    def request(self, target, headers, deadline):
        """Sends one GET; returns (status, {lower-case name: value}, body)."""
        lines = [f"GET {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self.buffer:
            self._fill(deadline)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        got = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            got[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            body = self._take(int(got.get("content-length", "0")), deadline)
        return status, got, body

    def get(self, target, host, extra=None):
        headers = {"Host": host, **(extra or {})}
        return self.request(target, headers, time.monotonic() + self.timeout)

    def upgrade(self, host, origin, protocol="xcg.v1", extra=None):
        """Opens the WebSocket on /ws; raises HandshakeError unless the server switches."""
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        headers = {"Host": host, "Upgrade": "websocket", "Connection": "Upgrade",
                   "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", "Origin": origin}
        if protocol:
            headers["Sec-WebSocket-Protocol"] = protocol
        headers.update(extra or {})
        status, got, body = self.request("/ws", headers, time.monotonic() + self.timeout)
        if status != 101:
            raise HandshakeError(status, got, body)
        if got.get("sec-websocket-accept") != accept_key(key):
            raise HandshakeError(status, got, b"wrong Sec-WebSocket-Accept")
        return got

    # --- frames --------------------------------------------------------------------------

    def send_text(self, text):
        self.send_raw(frame(TEXT, text.encode("utf-8")))

    def send_binary(self, data):
        self.send_raw(frame(BINARY, data))

    def send_close(self, code=1000, reason=b""):
        self.send_raw(frame(CLOSE, struct.pack(">H", code) + reason))

    def read_frame(self, timeout=None):
        """(opcode, payload, fin) of the next frame; pings are answered and skipped."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            b0, b1 = self._take(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._take(2, deadline))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._take(8, deadline))[0]
            key = self._take(4, deadline) if b1 & 0x80 else None
            payload = self._take(n, deadline)
            if key:
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == PING:
                self.send_raw(frame(PONG, payload))
                continue
            return opcode, payload, bool(b0 & 0x80)

    def read_until(self, predicate, timeout=None):
        """Reads frames until predicate(opcode, payload) holds; returns every frame read.
        Raises TimeoutError, or ConnectionError if the server closes first."""
        deadline = time.monotonic() + (timeout or self.timeout)
        frames = []
        while True:
            left = deadline - time.monotonic()
            opcode, payload, _ = self.read_frame(timeout=max(left, 0.001))
            frames.append((opcode, payload))
            if predicate(opcode, payload):
                return frames
            if opcode == CLOSE:
                raise ConnectionError(f"closed: {close_reason(payload)}")


def close_reason(payload):
    """(code, text) of a close frame's payload; (None, "") if it has none."""
    if len(payload) < 2:
        return None, ""
    return struct.unpack(">H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


def log_in(host, port, public_host, origin, token, **kwargs):
    """A client that opened /ws and sent `token` as its first message."""
    client = WebClient(host, port, **kwargs)
    client.upgrade(public_host, origin)
    client.send_text(token)
    return client
