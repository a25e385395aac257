# C types for Cython's compilation of _packet.py (an "augmenting .pxd": _packet.py stays plain
# Python and runs as it is without a build). Every name declared here keeps its Python behaviour.
import cython

cdef class Packet:
    cdef public int code
    cdef public int identifier
    cdef public bytes authenticator
    cdef public list attrs
    cdef public bytes raw
    cdef dict _first
    cdef public Py_ssize_t _ma

    @cython.locals(first=dict)
    cdef dict _index(self)
    cpdef get(self, int type_)
    cpdef list get_all(self, int type_)
    @cython.locals(v=bytes, high="unsigned long")
    cpdef get_int(self, int type_)
    @cython.locals(v=bytes)
    cpdef get_str(self, int type_)
    cpdef vsa(self, long vendor, int subtype)

@cython.locals(n=Py_ssize_t, pos=Py_ssize_t, slen=Py_ssize_t)
cpdef split_vsa(bytes value)

@cython.locals(n=Py_ssize_t, length=Py_ssize_t, pos=Py_ssize_t, alen=Py_ssize_t, end=Py_ssize_t, raw=bytes,
               attrs=list, ma=Py_ssize_t, packet=Packet, buf="const unsigned char*")
cpdef Packet decode(data)

@cython.locals(packet=Packet, offset=Py_ssize_t, pos=Py_ssize_t, raw=bytes)
cpdef verify_message_authenticator(packet, bytes secret, request_authenticator=*, request_code=*)
