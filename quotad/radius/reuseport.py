"""Spreading one RADIUS port's requests over the workers by Identifier (Linux).

With SO_REUSEPORT alone the kernel picks a worker's socket by a hash of the source address and
port, so a gateway that sends from one socket (most do, and the bench measured it: one source
port, two workers, one of them idle) is served by one worker however many there are. A classic
BPF program attached to the port's socket group (SO_ATTACH_REUSEPORT_CBPF) picks the socket by
the request's Identifier instead: socket = Identifier mod workers. Identifiers cycle through 256
values per gateway socket, so every gateway's load reaches every worker.

Duplicate detection stays per worker (RFC 5080 §2.2.2): a retransmission carries the same
Identifier as the original, so it reaches the worker whose reply cache holds the answer. While
the group is short of a socket (a worker starting or being replaced) an Identifier that maps past
the last socket falls back to the kernel's hash, and the mapping of the others may shift: a
retransmission of that moment can reach another worker and be processed again, which attach and
accounting are built to take (the same session; cumulative counters).
"""

from __future__ import annotations

import ctypes
import socket
import sys

# From <asm-generic/socket.h>; the same on every Linux architecture Python runs on.
SO_ATTACH_REUSEPORT_CBPF = 51

# Classic BPF opcodes (<linux/filter.h>): load an octet at an absolute offset, A %= k, return A.
BPF_LD_B_ABS = 0x30
BPF_ALU_MOD_K = 0x94
BPF_RET_A = 0x16

Instruction = tuple[int, int, int, int]  # code, jt, jf, k


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


def program(workers: int) -> list[Instruction]:
    """The filter. The kernel runs it with the packet at the UDP payload, so octet 1 is the
    RADIUS Identifier (RFC 2865 §3); a datagram too short to have one selects socket 0 (and is
    dropped there as malformed)."""
    if not 2 <= workers <= 0xFFFF:
        raise ValueError(f"workers must be between 2 and 65535, not {workers}")
    return [(BPF_LD_B_ABS, 0, 0, 1), (BPF_ALU_MOD_K, 0, 0, workers), (BPF_RET_A, 0, 0, 0)]


def spread_by_identifier(sock: socket.socket, workers: int) -> bool:
    """Attach the filter to the SO_REUSEPORT group ``sock`` is bound in. False where the platform
    has no such option (then the kernel's hash of source address and port spreads requests)."""
    if workers < 2 or not sys.platform.startswith("linux"):
        return False
    insns = program(workers)
    array = (_Filter * len(insns))(*(_Filter(*insn) for insn in insns))
    prog = _Program(len(insns), ctypes.cast(array, ctypes.POINTER(_Filter)))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(prog))
    except OSError:
        return False
    return True
