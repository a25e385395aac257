"""The Python floor: what a bare uvloop server does per request on this machine.

usage: python pyfloor.py MODE PORT
  raw       hand-rolled RFC 2865/2866/3579 handling with struct + hashlib/hmac (Message-Authenticator
            check, PAP un-hiding, signed Accept/Reject with Message-Authenticator; Accounting-Response)
  rawredis  raw + one EVALSHA of quota1.lua per request on one pipelined Redis connection
            ($REDIS_PORT, default 6390; $QUOTA_SHA), the reply sent when Redis has answered;
            one write to Redis per loop turn, no task per request
  echo      the UDP echo floor
Binds 127.0.0.1 only. Secret testing123, user mio@iij / iij. A measuring stick, not a product:
no dedup cache, no policy, no metrics, no error handling beyond dropping bad packets.
"""
import asyncio
import hashlib
import hmac
import os
import struct
import sys

SECRET = b"testing123"
USERS_B = {b"mio@iij": b"iij"}


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        self.t.sendto(data, addr)


_md5 = hashlib.md5
_hdig = hmac.digest
_Z16 = bytes(16)
_unpack = struct.unpack_from


class RawServer(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        n = len(data)
        if n < 20:
            return
        code, pid, length = _unpack("!BBH", data)
        if length < 20 or length > n:
            return
        ra = data[4:20]
        i = 20
        ma = -1
        pw = user = None
        while i + 2 <= length:
            t = data[i]
            al = data[i + 1]
            if al < 2:
                return
            if t == 80:
                ma = i + 2
            elif t == 2:
                pw = data[i + 2:i + al]
            elif t == 1:
                user = data[i + 2:i + al]
            i += al
        if code == 1:
            if ma < 0:
                return
            buf = bytearray(data[:length])
            buf[ma:ma + 16] = _Z16
            if not hmac.compare_digest(_hdig(SECRET, buf, "md5"), data[ma:ma + 16]):
                return
            ok = False
            if pw is not None and len(pw) % 16 == 0 and pw:
                out = bytearray()
                last = ra
                for j in range(0, len(pw), 16):
                    blk = pw[j:j + 16]
                    h = _md5(SECRET + last).digest()
                    out += (int.from_bytes(h, "big") ^ int.from_bytes(blk, "big")).to_bytes(16, "big")
                    last = blk
                ok = USERS_B.get(user) == bytes(out).rstrip(b"\0")
            rep = bytearray(38)
            rep[0] = 2 if ok else 3
            rep[1] = pid
            rep[3] = 38
            rep[4:20] = ra
            rep[20] = 80
            rep[21] = 18
            rep[22:38] = _hdig(SECRET, rep, "md5")
            rep[4:20] = _md5(rep + SECRET).digest()
            self.reply(rep, addr, data)
        elif code == 4:
            if _md5(data[:4] + _Z16 + data[20:length] + SECRET).digest() != ra:
                return
            rep = bytearray(20)
            rep[0] = 5
            rep[1] = pid
            rep[3] = 20
            rep[4:20] = ra
            rep[4:20] = _md5(rep + SECRET).digest()
            self.reply(rep, addr, data)

    def reply(self, rep, addr, data):
        self.t.sendto(rep, addr)


class _RedisPipe(asyncio.Protocol):
    """Minimal pipelined RESP client: one write per loop turn, replies matched in order."""

    def __init__(self):
        self.buf = bytearray()
        self.waiting = __import__("collections").deque()
        self.out = []
        self.scheduled = False

    def connection_made(self, transport):
        self.t = transport

    def call(self, cmd, cb):
        self.out.append(cmd)
        self.waiting.append(cb)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self):
        self.scheduled = False
        self.t.write(b"".join(self.out))
        self.out.clear()

    def data_received(self, data):
        self.buf += data
        buf = self.buf
        pos = 0
        n = len(buf)
        while pos < n:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            # replies of quota1.lua are integers (":N") or errors ("-ERR")
            line = bytes(buf[pos:end])
            pos = end + 2
            self.waiting.popleft()(line)
        del buf[:pos]


class RawRedisServer(RawServer):
    """RawServer plus one EVALSHA of quota1.lua per request (the reply waits for Redis)."""

    def __init__(self, pipe, sha):
        self.pipe = pipe
        self.sha = sha

    def reply(self, rep, a, data):
        t = self.t
        msisdn = b"0"
        i = 20
        while i + 2 <= len(data):
            if data[i] == 31:
                msisdn = data[i + 2:i + data[i + 1]]
                break
            i += max(data[i + 1], 2)
        key = b"q:" + msisdn
        args = [b"EVALSHA", self.sha, b"1", key, b"1000", b"1700000000", msisdn]
        cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in args)
        self.pipe.call(cmd, lambda _line, rep=rep, a=a: t.sendto(rep, a))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "rawredis":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        rport = int(os.environ.get("REDIS_PORT", "6390"))
        sha = os.environ["QUOTA_SHA"].encode()
        _, pipe = loop.run_until_complete(loop.create_connection(_RedisPipe, "127.0.0.1", rport))
        proto = RawRedisServer(pipe, sha)
        loop.run_until_complete(loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", port)))
        loop.run_forever()
        return
    if "--no-uvloop" not in sys.argv:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    factory = {"echo": Echo, "raw": RawServer}[mode]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    proto = factory()
    transport, _ = loop.run_until_complete(
        loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", port)))
    sock = transport.get_extra_info("socket")
    import socket
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    print(f"{mode} listening on 127.0.0.1:{port} loop={type(loop).__module__}", flush=True)
    try:
        loop.run_forever()
    finally:
        transport.close()


if __name__ == "__main__":
    main()
