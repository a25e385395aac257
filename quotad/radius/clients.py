"""Gateways (RADIUS clients): which secret a datagram is checked with, by its source address.

Exact host entries are a dict lookup; CIDR entries are searched longest prefix first, and the
answer for each source address is remembered (gateways are few; their addresses repeat).
A source that matches no entry is unknown: its datagrams are dropped and counted (R-70).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    secret: bytes
    coa_port: int = 3799
    coa_secret: bytes = b""  # empty: the same secret as its requests

    def __repr__(self) -> str:  # never show the secret
        return f"Client(name={self.name!r}, coa_port={self.coa_port})"


class ClientTable:
    """Source address → Client."""

    _MEMO_LIMIT = 65536

    def __init__(self, entries: list[tuple[str, Client]]):
        self._hosts: dict[str, Client] = {}
        nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Client]] = []
        for address, client in entries:
            net = ipaddress.ip_network(address, strict=False)
            if net.num_addresses == 1:
                self._hosts[str(net.network_address)] = client
            else:
                nets.append((net, client))
        nets.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self._nets = nets
        self._memo: dict[str, Client | None] = {}

    def find(self, source: str) -> Client | None:
        client = self._hosts.get(source)
        if client is not None:
            return client
        if not self._nets:
            return None
        try:
            return self._memo[source]
        except KeyError:
            pass
        found = self._search(source)
        if len(self._memo) >= self._MEMO_LIMIT:
            self._memo.clear()
        self._memo[source] = found
        return found

    def _search(self, source: str) -> Client | None:
        try:
            addr = ipaddress.ip_address(source)
        except ValueError:
            return None
        for net, client in self._nets:
            if addr.version == net.version and addr in net:
                return client
        return None
