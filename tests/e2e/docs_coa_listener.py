"""The gateway's CoA/Disconnect listener the docs tell the reader to run ("a few lines of pyrad
do", docs/gateway-integration.md §6), for tests/e2e/test_docs_examples.py: it answers every
CoA-Request and Disconnect-Request with an ACK and writes each, decoded with quotad's dictionary,
in the form the doc shows:

    CoA-Request
       Message-Authenticator = 0x…
       NAS-IP-Address = 127.0.0.1
       Calling-Station-Id = "819000000011"

Usage: python docs_coa_listener.py ADDRESS PORT SECRET OUTFILE (a line "listening" is printed
once the socket is bound).
"""

from __future__ import annotations

import socket
import sys

from pyrad import packet as pp
from pyrad.dictionary import Dictionary

from quotad.radius.dictionary import default_dictionary_path

NAMES = {pp.CoARequest: "CoA-Request", pp.DisconnectRequest: "Disconnect-Request"}
ACK = {pp.CoARequest: pp.CoAACK, pp.DisconnectRequest: pp.DisconnectACK}


def shown(kind: str, value: object) -> str:
    """A value as radclient prints it: strings quoted, octets in hex, numbers and addresses bare."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if kind == "string":
        return f'"{value}"'
    return str(value)


def describe(request: pp.Packet, dictionary: Dictionary) -> str:
    lines = [NAMES.get(request.code, f"code {request.code}")]
    for key in request.keys():  # noqa: SIM118 (pyrad: keys() gives the names, iteration the codes)
        if isinstance(key, str):
            kind = dictionary.attributes[key].type
            lines += [f"   {key} = {shown(kind, value)}" for value in request[key]]
        else:  # not in the dictionary
            lines += [f"   Attr-{key} = 0x{value.hex()}" for value in request[key]]
    return "\n".join(lines) + "\n"


def main(address: str, port: int, secret: bytes, outfile: str) -> None:
    dictionary = Dictionary(str(default_dictionary_path()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, open(outfile, "a") as out:
        sock.bind((address, port))
        print("listening", flush=True)
        while True:
            raw, peer = sock.recvfrom(4096)
            request = pp.CoAPacket(packet=raw, secret=secret, dict=dictionary)
            if request.code not in ACK or not request.VerifyCoARequest():
                continue  # not signed with the secret: discarded, as a gateway does
            out.write(describe(request, dictionary))
            out.flush()
            reply = request.CreateReply()
            reply.code = ACK[request.code]
            sock.sendto(reply.ReplyPacket(), peer)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), sys.argv[4])
