"""Writes the seed corpus (fuzz/corpus/*.bin): valid requests of every kind quotad takes, signed
with the secret testing123, plus a few near misses. Run from the repository root:

    .venv/bin/python -m fuzz.make_corpus
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from quotad.radius import packet as rp

SECRET = b"testing123"
AUTH = bytes(range(16))
CORPUS = Path(__file__).with_name("corpus")


def seeds() -> dict[str, bytes]:
    base = (rp.attr(rp.USER_NAME, b"mio@iij") + rp.attr(rp.CALLED_STATION_ID, b"iijmio.jp")
            + rp.attr(rp.CALLING_STATION_ID, b"819000000001") + rp.attr(rp.NAS_IP_ADDRESS, bytes([127, 0, 0, 1])))
    vsas = (rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_IMSI, b"440100000000001")
            + rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_SGSN_MCC_MNC, b"44010")
            + rp.attr_vsa(rp.VENDOR_3GPP, rp.TGPP_RAT_TYPE, b"\x06"))
    chap_digest = hashlib.md5(b"\x07iij" + AUTH).digest()
    out = {
        "access-pap": rp.encode_request(rp.ACCESS_REQUEST, 1, SECRET, base + rp.pap_attr(b"iij", SECRET, AUTH),
                                        authenticator=AUTH)[0],
        "access-chap": rp.encode_request(rp.ACCESS_REQUEST, 2, SECRET,
                                         base + rp.attr(rp.CHAP_PASSWORD, b"\x07" + chap_digest),
                                         authenticator=AUTH)[0],
        "access-vsa-proxy-state": rp.encode_request(
            rp.ACCESS_REQUEST, 3, SECRET,
            base + rp.pap_attr(b"iij", SECRET, AUTH) + vsas + rp.attr(rp.PROXY_STATE, b"ps-1")
            + rp.attr(rp.ACCT_SESSION_ID, b"sess-1"), authenticator=AUTH)[0],
        "access-no-ma": rp.encode_request(rp.ACCESS_REQUEST, 4, SECRET, base + rp.pap_attr(b"iij", SECRET, AUTH),
                                          authenticator=AUTH, message_authenticator=False)[0],
        "accounting-start": rp.encode_request(
            rp.ACCOUNTING_REQUEST, 5, SECRET,
            rp.attr_int(rp.ACCT_STATUS_TYPE, 1) + rp.attr(rp.ACCT_SESSION_ID, b"sess-1") + base
            + rp.attr(rp.CLASS, b"quotad1;fam;819000000001;sess-1"), message_authenticator=False)[0],
        "accounting-interim": rp.encode_request(
            rp.ACCOUNTING_REQUEST, 6, SECRET,
            rp.attr_int(rp.ACCT_STATUS_TYPE, 3) + rp.attr(rp.ACCT_SESSION_ID, b"sess-1") + base
            + rp.attr_int(rp.ACCT_INPUT_OCTETS, 123456) + rp.attr_int(rp.ACCT_OUTPUT_GIGAWORDS, 1) + vsas,
            message_authenticator=False)[0],
        "coa-request": rp.encode_request(rp.COA_REQUEST, 7, SECRET, rp.attr(rp.ACCT_SESSION_ID, b"sess-1"))[0],
        "status-server": rp.encode_request(rp.STATUS_SERVER, 8, SECRET, b"", authenticator=AUTH)[0],
        "accept": rp.encode_response(rp.ACCESS_ACCEPT, 1, AUTH, SECRET, rp.attr_int(rp.SESSION_TIMEOUT, 86400)),
        "header-only": bytes([1, 9, 0, 20]) + AUTH,
        "attribute-length-1": bytes([1, 10, 0, 23]) + AUTH + bytes([1, 1, 0]),
        "length-past-datagram": bytes([1, 11, 0, 200]) + AUTH,
    }
    return out


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in seeds().items():
        (CORPUS / f"{name}.bin").write_bytes(data)
    print(f"{len(seeds())} seeds in {CORPUS}")


if __name__ == "__main__":
    main()
