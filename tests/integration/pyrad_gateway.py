"""A packet gateway played by pyrad (the independent peer): Access-Requests and Accounting-Requests
as a PGW builds them, sent over real UDP to a running daemon."""

from __future__ import annotations

from dataclasses import dataclass

from pyrad import packet as pp
from pyrad.dictionary import Dictionary as PyradDictionary

from quotad.radius import packet as rp
from quotad.radius.dictionary import default_dictionary_path
from tests.integration.daemon_fixture import SECRET, exchange

DICT = PyradDictionary(str(default_dictionary_path()))
GIGAWORD = 1 << 32
STATUS = {1: "Start", 2: "Stop", 3: "Interim-Update", 7: "Accounting-On", 8: "Accounting-Off"}


@dataclass
class Accept:
    """What a gateway keeps of an Access-Accept."""

    code: int
    klass: bytes | None
    framed_ip: str | None


def _put(req: pp.Packet, attrs: dict[str, object]) -> None:
    """Set the attributes that have a value (None: the gateway leaves it out)."""
    for name, value in attrs.items():
        if value is not None:
            req[name] = value


class PyradGateway:
    """One gateway (its NAS-IP-Address), talking to the daemon's ports from 127.0.0.1."""

    def __init__(self, auth_port: int, acct_port: int, nas_ip: str = "127.0.0.1", apn: str = "iijmio.jp",
                 user: str = "mio@iij", password: str = "iij") -> None:
        self.auth_port, self.acct_port = auth_port, acct_port
        self.nas_ip, self.apn, self.user, self.password = nas_ip, apn, user, password
        self._id = 0

    def _next_id(self) -> int:
        self._id = (self._id + 1) % 256
        return self._id

    async def attach(self, msisdn: str, imsi: str | None = None, acct_session_id: str | None = None,
                     klass: bytes | None = None, service_type: str | None = None, password: bool = True,
                     state: bytes | None = None) -> Accept:
        req = pp.AuthPacket(code=pp.AccessRequest, id=self._next_id(), secret=SECRET, dict=DICT)
        req["User-Name"] = self.user
        if password:
            req["User-Password"] = req.PwCrypt(self.password)
        if state is not None:
            req["State"] = state
        req["Called-Station-Id"] = self.apn
        req["Calling-Station-Id"] = msisdn
        req["NAS-IP-Address"] = self.nas_ip
        _put(req, {"3GPP-IMSI": imsi, "Acct-Session-Id": acct_session_id, "Class": klass,
                   "Service-Type": service_type})
        req.add_message_authenticator()
        raw = await exchange(self.auth_port, bytes(req.RequestPacket()))
        assert raw is not None, "no answer to the Access-Request"
        reply = req.CreateReply(packet=raw)
        assert req.VerifyReply(reply, raw), "bad Response Authenticator"
        ip = reply["Framed-IP-Address"][0] if "Framed-IP-Address" in reply else None
        klass_back = reply["Class"][0] if "Class" in reply else None
        return Accept(reply.code, klass_back, ip)

    async def account(self, status: int, msisdn: str, acct_session_id: str | None = None, octets: int = 0,
                      klass: bytes | None = None, exempt: int = 0, delay: int | None = None,
                      event_timestamp: int | None = None, framed_ip: str | None = None,
                      imsi: str | None = None) -> rp.Packet:
        """One Accounting-Request; returns the (verified) Accounting-Response."""
        req = pp.AcctPacket(code=pp.AccountingRequest, id=self._next_id(), secret=SECRET, dict=DICT)
        req["Acct-Status-Type"] = STATUS[status]
        req["NAS-IP-Address"] = self.nas_ip
        if status not in (7, 8):
            req["Calling-Station-Id"] = msisdn
            req["Acct-Input-Octets"], req["Acct-Input-Gigawords"] = octets % GIGAWORD, octets // GIGAWORD
            req["Acct-Output-Octets"] = 0
        if exempt:
            req["Quotad-Exempt-Input-Octets"] = exempt % GIGAWORD
            req["Quotad-Exempt-Input-Gigawords"] = exempt // GIGAWORD
        _put(req, {"Acct-Session-Id": acct_session_id, "Class": klass, "Acct-Delay-Time": delay,
                   "Event-Timestamp": event_timestamp, "Framed-IP-Address": framed_ip, "3GPP-IMSI": imsi})
        raw = await exchange(self.acct_port, bytes(req.RequestPacket()))
        assert raw is not None, "no answer to the Accounting-Request"
        reply = rp.decode(raw)
        assert reply.code == rp.ACCOUNTING_RESPONSE and rp.verify_response_authenticator(reply, req.authenticator,
                                                                                         SECRET)
        return reply


def status_server(kind: str, secret: bytes = SECRET, identifier: int = 7, message_authenticator: bool = True,
                  proxy_states: tuple[bytes, ...] = ()) -> tuple[pp.Packet, bytes]:
    """A Status-Server (RFC 5997) as pyrad builds it for the authentication port (``kind="auth"``)
    or the accounting port (``"acct"``): random Request Authenticator, Message-Authenticator first.
    Returns the request (to check the reply with) and its datagram."""
    req: pp.Packet
    if kind == "auth":
        req = pp.AuthPacket(code=pp.StatusServer, id=identifier, secret=secret, dict=DICT)
        if message_authenticator:
            req.add_message_authenticator()
    else:
        req = pp.AcctPacket(code=pp.StatusServer, id=identifier, secret=secret, dict=DICT,
                            message_authenticator=message_authenticator)
    for state in proxy_states:
        req.AddAttribute("Proxy-State", state)
    return req, bytes(req.RequestPacket())


def verify_status_reply(req: pp.Packet, raw: bytes | None) -> pp.Packet:
    """pyrad's check of a reply to ``req``: Identifier, Response Authenticator, Message-Authenticator
    required (BlastRADIUS), Proxy-States as sent."""
    assert raw is not None, "no answer to the Status-Server"
    reply = req.CreateReply(packet=raw)
    assert req.VerifyReply(reply, raw, enforce_ma=True), "pyrad refuses the reply"
    return reply
