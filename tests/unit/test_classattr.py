"""The Class attribute round trip (accounting finds its line without a lookup)."""

from quotad.aaa import classattr


def test_round_trip_and_foreign_class_ignored() -> None:
    value = classattr.encode("fam", "819000000001", "abcd")
    assert classattr.decode(value) == classattr.ClassInfo("fam", "819000000001", "abcd")
    assert classattr.decode(b"other-server-class") is None
    assert classattr.decode(None) is None
    assert classattr.decode(b"quotad1;only-two") is None
    # A gateway's Acct-Session-Id may hold ';': the session id is everything after the MSISDN.
    assert classattr.decode(b"quotad1;fam;819000000001;gw/x;y") == classattr.ClassInfo("fam", "819000000001", "gw/x;y")


def test_fresh_session_ids_differ_in_a_forked_worker() -> None:
    """Workers are forked: each draws its own prefix, so their new session ids never collide."""
    import os

    from quotad.aaa import sessionid

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child writes one id and leaves at once
        os.write(write, sessionid.fresh().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    mine = sessionid.fresh()
    assert child[:13] != mine[:13] and len(child) >= 14 and child.startswith("a")
