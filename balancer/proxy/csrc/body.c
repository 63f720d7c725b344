/* Message bodies: Content-Length countdown, strict chunked decoding (re-encoded canonically or decoded), and
 * close-delimited bodies.  Chunk extensions and trailers are validated and dropped. */
#include "codec.h"

#include <structmember.h>

enum { S_SIZE, S_SIZE_MORE, S_EXT, S_SIZE_LF, S_DATA, S_DATA_CR, S_DATA_LF, S_TRAILER, S_TRAILER_NAME,
       S_TRAILER_LINE, S_TRAILER_LF, S_END_LF };

#define MAX_TRAILER 16384

vf_Framer *vf_framer_new(int mode, long long length, int rechunk, int terminate, int status) {
    vf_Framer *f = PyObject_New(vf_Framer, &vf_FramerType);
    if (f == NULL) return NULL;
    f->mode = mode;
    f->rechunk = rechunk;
    f->terminate = terminate;
    f->state = S_SIZE;
    f->done = (char)(mode == VF_LENGTH && length <= 0);
    f->size_digits = 0;
    f->remaining = mode == VF_LENGTH ? length : 0;
    f->decoded = 0;
    f->end = 0;
    f->trailer = 0;
    f->status = status;
    return f;
}

static char *put_chunk(char *w, const char *data, Py_ssize_t n, int rechunk) {
    if (rechunk) w += sprintf(w, "%zx\r\n", (size_t)n);
    memcpy(w, data, n);
    w += n;
    if (rechunk) {
        *w++ = '\r';
        *w++ = '\n';
    }
    return w;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

Py_ssize_t vf_framer_run(vf_Framer *f, const char *in, Py_ssize_t n, char *out) {
    char *w = out;
    if (f->done) {
        f->end = 0;
        return 0;
    }
    if (f->mode == VF_LENGTH) {
        Py_ssize_t take = n < f->remaining ? n : (Py_ssize_t)f->remaining;
        memcpy(w, in, take);
        f->remaining -= take;
        f->decoded += take;
        if (f->remaining == 0) {
            f->done = 1;
            f->end = take;
        }
        return take;
    }
    if (f->mode == VF_EOF) {
        f->decoded += n;
        return n ? put_chunk(w, in, n, f->rechunk) - out : 0;
    }
    Py_ssize_t p = 0;
    while (p < n) {
        char c = in[p];
        switch (f->state) {
            case S_SIZE:
            case S_SIZE_MORE: {
                int v = hexval(c);
                if (v >= 0) {
                    if (f->remaining > (LLONG_MAX >> 5)) return vf_fail(f->status, "chunk size too large");
                    f->remaining = f->remaining * 16 + v;
                    f->state = S_SIZE_MORE;
                } else if (f->state == S_SIZE) {
                    return vf_fail(f->status, "invalid chunk size");
                } else if (c == ';') {
                    f->state = S_EXT;
                } else if (c == '\r') {
                    f->state = S_SIZE_LF;
                } else {
                    return vf_fail(f->status, "invalid chunk size");
                }
                p++;
                break;
            }
            case S_EXT:
                if (c == '\r') f->state = S_SIZE_LF;
                else if (!vf_fchar[(uint8_t)c]) return vf_fail(f->status, "invalid chunk extension");
                p++;
                break;
            case S_SIZE_LF:
                if (c != '\n') return vf_fail(f->status, "bare CR in chunk framing");
                f->state = f->remaining ? S_DATA : S_TRAILER;
                p++;
                break;
            case S_DATA: {
                Py_ssize_t take = n - p < f->remaining ? n - p : (Py_ssize_t)f->remaining;
                w = put_chunk(w, in + p, take, f->rechunk);
                f->remaining -= take;
                f->decoded += take;
                p += take;
                if (!f->remaining) f->state = S_DATA_CR;
                break;
            }
            case S_DATA_CR:
                if (c != '\r') return vf_fail(f->status, "chunk longer than its size");
                f->state = S_DATA_LF;
                p++;
                break;
            case S_DATA_LF:
                if (c != '\n') return vf_fail(f->status, "bare CR in chunk framing");
                f->state = S_SIZE;
                p++;
                break;
            case S_TRAILER:
                f->state = c == '\r' ? S_END_LF : S_TRAILER_NAME;
                if (c != '\r' && !vf_tchar[(uint8_t)c]) return vf_fail(f->status, "invalid trailer");
                p++;
                break;
            case S_TRAILER_NAME:
                if (c == ':') f->state = S_TRAILER_LINE;
                else if (!vf_tchar[(uint8_t)c]) return vf_fail(f->status, "invalid trailer");
                p++;
                break;
            case S_TRAILER_LINE:
                if (c == '\r') f->state = S_TRAILER_LF;
                else if (!vf_fchar[(uint8_t)c]) return vf_fail(f->status, "invalid trailer");
                p++;
                break;
            case S_TRAILER_LF:
            case S_END_LF:
                if (c != '\n') return vf_fail(f->status, "bare CR in chunk framing");
                p++;
                if (f->state == S_TRAILER_LF) {
                    f->state = S_TRAILER;
                    break;
                }
                f->done = 1;
                f->end = p;
                if (f->terminate && f->rechunk) w = (char *)memcpy(w, "0\r\n\r\n", 5) + 5;
                return w - out;
        }
        if (f->state >= S_TRAILER && (f->trailer += 1) > MAX_TRAILER) return vf_fail(f->status, "trailers too large");
    }
    return w - out;
}

/* Framer.feed(data, pos=0) -> bytes: the output for data[pos:] (data itself when it is all body, as is). */
static PyObject *framer_feed(vf_Framer *f, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1 || nargs > 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "feed(data: bytes, pos: int = 0)");
        return NULL;
    }
    Py_ssize_t pos = nargs == 2 ? PyLong_AsSsize_t(args[1]) : 0;
    if (pos == -1 && PyErr_Occurred()) return NULL;
    const char *data = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return NULL;
    }
    if (f->done) {
        f->end = pos;
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    if (pos == 0 && !f->rechunk && (f->mode == VF_EOF || (f->mode == VF_LENGTH && n < f->remaining))) {
        f->decoded += n; /* all of it is body, forwarded unchanged: no copy */
        if (f->mode == VF_LENGTH) f->remaining -= n;
        return Py_NewRef(args[0]);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n - pos + 64);
    if (out == NULL) return NULL;
    Py_ssize_t written = vf_framer_run(f, data + pos, n - pos, PyBytes_AS_STRING(out));
    if (written < 0 || _PyBytes_Resize(&out, written) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    if (f->done) f->end += pos;
    return out;
}

static PyObject *framer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *names[] = {"mode", "length", "rechunk", "terminate", "status", NULL};
    int mode, rechunk = 0, terminate = 0, status = 400;
    long long length = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i|Lppi", names, &mode, &length, &rechunk, &terminate, &status))
        return NULL;
    if (mode < VF_LENGTH || mode > VF_EOF) {
        PyErr_SetString(PyExc_ValueError, "mode is LENGTH, CHUNKED or EOF");
        return NULL;
    }
    return (PyObject *)vf_framer_new(mode, length, rechunk, terminate, status);
}

static void framer_dealloc(PyObject *f) {
    PyObject_Free(f);
}

static PyMethodDef framer_methods[] = {
    {"feed", (PyCFunction)(void (*)(void))framer_feed, METH_FASTCALL,
     "feed(data, pos=0) -> bytes to forward; then .done, .end (where the message ended in data), .decoded"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef framer_members[] = {
    {"done", T_BOOL, offsetof(vf_Framer, done), READONLY, NULL},
    {"end", T_PYSSIZET, offsetof(vf_Framer, end), READONLY, NULL},
    {"decoded", T_LONGLONG, offsetof(vf_Framer, decoded), READONLY, "payload bytes so far"},
    {"mode", T_INT, offsetof(vf_Framer, mode), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject vf_FramerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "balancer.proxy._codec.Framer",
    .tp_basicsize = sizeof(vf_Framer),
    .tp_dealloc = framer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Framer(mode, length=0, rechunk=False, terminate=False, status=400): a message body's framing.",
    .tp_methods = framer_methods,
    .tp_members = framer_members,
    .tp_new = framer_new,
};
