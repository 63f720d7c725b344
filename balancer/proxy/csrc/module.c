/* balancer.proxy._codec: module set-up, character tables, header-line scanner, request ids. */
#include "hot.h"

uint8_t vf_tchar[256];
uint8_t vf_fchar[256];
PyObject *vf_HeadError;

static char rid_prefix[8] = {'0', '0', '0', '0', '0', '0', '0', '0'};
static uint64_t rid_counter;

int vf_fail(int status, const char *message) {
    PyObject *args = Py_BuildValue("(is)", status, message);
    if (args != NULL) {
        PyErr_SetObject(vf_HeadError, args);
        Py_DECREF(args);
    }
    return -1;
}

Py_ssize_t vf_scan_headers(const char *buf, Py_ssize_t pos, Py_ssize_t len, vf_header *hs, int *count, int status) {
    int n = 0;
    Py_ssize_t p = pos;
    for (;;) {
        if (p >= len) return VF_INCOMPLETE;
        char c = buf[p];
        if (c == '\r') {
            if (p + 1 >= len) return VF_INCOMPLETE;
            if (buf[p + 1] != '\n') return vf_fail(status, "bare CR in the head");
            *count = n;
            return p + 2;
        }
        if (c == ' ' || c == '\t') return vf_fail(status, "obsolete line folding");
        Py_ssize_t start = p;
        while (p < len && vf_tchar[(uint8_t)buf[p]]) p++;
        if (p >= len) return VF_INCOMPLETE;
        if (buf[p] != ':' || p == start) return vf_fail(status, "invalid header name");
        Py_ssize_t name_len = p - start;
        p++;
        while (p < len && (buf[p] == ' ' || buf[p] == '\t')) p++;
        Py_ssize_t value = p;
        while (p < len && vf_fchar[(uint8_t)buf[p]]) p++;
        if (p >= len) return VF_INCOMPLETE;
        if (buf[p] != '\r') return vf_fail(status, "invalid character in a header value");
        if (p + 1 >= len) return VF_INCOMPLETE;
        if (buf[p + 1] != '\n') return vf_fail(status, "bare CR in a header value");
        Py_ssize_t value_end = p;
        while (value_end > value && (buf[value_end - 1] == ' ' || buf[value_end - 1] == '\t')) value_end--;
        if (n >= VF_MAX_HEADERS) return vf_fail(status == 400 ? 431 : status, "too many header fields");
        hs[n].line = start;
        hs[n].line_len = p + 2 - start;
        hs[n].name_len = name_len;
        hs[n].value = value;
        hs[n].value_len = value_end - value;
        hs[n].kind = 0;
        hs[n].drop = 0;
        n++;
        p += 2;
    }
}

int vf_listed(const char *value, Py_ssize_t n, const char *token, Py_ssize_t token_n) {
    Py_ssize_t i = 0;
    while (i < n) {
        while (i < n && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) i++;
        Py_ssize_t start = i;
        while (i < n && value[i] != ',') i++;
        Py_ssize_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t')) end--;
        if (end - start == token_n) {
            Py_ssize_t k = 0;
            while (k < token_n && Py_TOLOWER((uint8_t)value[start + k]) == Py_TOLOWER((uint8_t)token[k])) k++;
            if (k == token_n) return 1;
        }
    }
    return 0;
}

Py_ssize_t vf_write_request_id(char *out) {
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ++rid_counter;
    memcpy(out, rid_prefix, 8);
    for (int i = VF_REQUEST_ID_LEN - 1; i >= 8; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
    return VF_REQUEST_ID_LEN;
}

PyObject *vf_new_request_id(void) {
    char id[VF_REQUEST_ID_LEN];
    vf_write_request_id(id);
    return PyUnicode_FromStringAndSize(id, VF_REQUEST_ID_LEN);
}

static PyObject *new_request_id(PyObject *self, PyObject *unused) {
    return vf_new_request_id();
}

static PyObject *set_request_id_prefix(PyObject *self, PyObject *arg) {
    char *data;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(arg, &data, &n) < 0) return NULL;
    if (n != 8) {
        PyErr_SetString(PyExc_ValueError, "the prefix is 8 bytes");
        return NULL;
    }
    memcpy(rid_prefix, data, 8);
    rid_counter = 0;
    Py_RETURN_NONE;
}

static PyObject *set_max_hops(PyObject *self, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    vf_set_max_hops((int)(n > 999 ? 999 : n));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"parse_request", (PyCFunction)(void (*)(void))vf_parse_request, METH_FASTCALL,
     "parse_request(data, pos, max_head, peer, scheme, trusted) -> Request | None"},
    {"parse_response", (PyCFunction)(void (*)(void))vf_parse_response, METH_FASTCALL,
     "parse_response(data, pos, flags, request, extra) -> (end, status, out, framer, keep_alive, close, body_bytes)"
     " | None"},
    {"route_lookup", (PyCFunction)(void (*)(void))vf_route_lookup, METH_FASTCALL,
     "route_lookup(exact, wildcard, host, path) -> Route | None: exact host, then wildcard suffixes; longest prefix"},
    {"record", (PyCFunction)(void (*)(void))vf_record_py, METH_FASTCALL,
     "record(pending, route, backend, status, bytes_in, bytes_out, elapsed_s, error): one request into metrics"},
    {"use_exchange_class", vf_use_exchange_class, METH_O, "the ExchangeCore subclass the compiled fast path creates"},
    {"clock", vf_clock_py, METH_NOARGS, "the proxy's monotonic clock in seconds, microsecond precision"},
    {"new_request_id", new_request_id, METH_NOARGS, "a new request id (prefix + counter)"},
    {"set_request_id_prefix", set_request_id_prefix, METH_O, "8 bytes that start every generated request id"},
    {"set_max_hops", set_max_hops, METH_O, "requests that went through this many VeloFlux proxies are answered 508"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_codec", "HTTP/1.1 head codec of the VeloFlux proxy.", -1,
                                    methods};

static void init_tables(void) {
    const char *specials = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        vf_tchar[c] = (uint8_t)((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                (c && strchr(specials, c) != NULL));
        vf_fchar[c] = (uint8_t)((c >= 0x20 && c != 0x7f) || c == '\t');
    }
}

PyMODINIT_FUNC PyInit__codec(void) {
    init_tables();
    if (PyType_Ready(&vf_RequestType) < 0 || PyType_Ready(&vf_FramerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    vf_HeadError = PyErr_NewExceptionWithDoc("balancer.proxy._codec.HeadError",
                                             "A malformed message: args are (HTTP status to answer, reason).",
                                             PyExc_ValueError, NULL);
    if (vf_HeadError == NULL || PyModule_AddObjectRef(m, "HeadError", vf_HeadError) < 0 ||
        PyModule_AddObjectRef(m, "Request", (PyObject *)&vf_RequestType) < 0 ||
        PyModule_AddObjectRef(m, "Framer", (PyObject *)&vf_FramerType) < 0 ||
        PyModule_AddIntConstant(m, "LENGTH", VF_LENGTH) < 0 || PyModule_AddIntConstant(m, "CHUNKED", VF_CHUNKED) < 0 ||
        PyModule_AddIntConstant(m, "EOF", VF_EOF) < 0 ||
        PyModule_AddIntConstant(m, "MAX_HEADERS", VF_MAX_HEADERS) < 0 ||
        vf_hot_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
