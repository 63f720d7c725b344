/* Response heads: parse the backend's head (skipping 1xx interim ones), build the client's head by splicing the
 * original header lines, and run the body framer over the bytes that came with the head, all in one call. */
#include "codec.h"

#define MAX_RESPONSE_HEAD 65536

enum { R_OTHER, R_CONNECTION, R_HOP, R_TE, R_CL, R_XRID };

static int classify(const char *name, Py_ssize_t n) {
    switch (n) {
        case 2: return VF_EQ(name, n, "te") ? R_HOP : R_OTHER;
        case 7: return VF_EQ(name, n, "upgrade") || VF_EQ(name, n, "trailer") ? R_HOP : R_OTHER;
        case 10:
            if (VF_EQ(name, n, "connection")) return R_CONNECTION;
            return VF_EQ(name, n, "keep-alive") ? R_HOP : R_OTHER;
        case 12: return VF_EQ(name, n, "x-request-id") ? R_XRID : R_OTHER;
        case 14: return VF_EQ(name, n, "content-length") ? R_CL : R_OTHER;
        case 15: return VF_EQ(name, n, "x-veloflux-hops") ? R_HOP : R_OTHER; /* our loop counter stays inside */
        case 16: return VF_EQ(name, n, "proxy-connection") ? R_HOP : R_OTHER;
        case 17: return VF_EQ(name, n, "transfer-encoding") ? R_TE : R_OTHER;
        default: return R_OTHER;
    }
}

static const char *default_reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 204: return "No Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 404: return "Not Found";
        case 500: return "Internal Server Error";
        default: return "Unknown";
    }
}

/* "HTTP/1.x SSS[ reason]\r\n": returns the offset after it, VF_INCOMPLETE, or -1 (error set). */
static Py_ssize_t status_line(const char *buf, Py_ssize_t p, Py_ssize_t len, int *status, int *http10,
                              Py_ssize_t *reason, Py_ssize_t *reason_n) {
    static const char pattern[] = "HTTP/1.x 000";
    for (Py_ssize_t i = 0; i < 12; i++) {
        if (p + i >= len) return VF_INCOMPLETE;
        char c = buf[p + i];
        if (i == 7 ? (c != '0' && c != '1') : i >= 9 ? !Py_ISDIGIT((uint8_t)c) : c != pattern[i])
            return vf_fail(502, "invalid status line");
    }
    *http10 = buf[p + 7] == '0';
    *status = (buf[p + 9] - '0') * 100 + (buf[p + 10] - '0') * 10 + (buf[p + 11] - '0');
    p += 12;
    if (p >= len) return VF_INCOMPLETE;
    if (buf[p] == ' ') p++;
    *reason = p;
    while (p < len && vf_fchar[(uint8_t)buf[p]]) p++;
    if (p + 1 >= len) return VF_INCOMPLETE;
    if (buf[p] != '\r' || buf[p + 1] != '\n') return vf_fail(502, "invalid status line");
    *reason_n = p - *reason;
    return p + 2;
}

#define PUT(lit) (w = (char *)memcpy(w, (lit), sizeof(lit) - 1) + sizeof(lit) - 1)
#define PUTN(src, n) (w = (char *)memcpy(w, (src), (n)) + (n))

PyObject *vf_parse_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *request_id = nargs == 5 ? vf_request_id_of(args[3]) : NULL;
    if (nargs != 5 || !PyBytes_Check(args[0]) || request_id == NULL || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "parse_response(data: bytes, pos, flags, request: Request, extra: bytes)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long flags = PyLong_AsLong(args[2]);
    if ((pos == -1 || flags == -1) && PyErr_Occurred()) return NULL;
    vf_response r;
    int parsed = vf_parse_response_at(args[0], pos, flags, request_id, args[4], &r);
    if (parsed <= 0) {
        if (parsed < 0) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *framer = r.framer != NULL ? (PyObject *)r.framer : Py_NewRef(Py_None);
    return Py_BuildValue("(niNNOOL)", r.end, r.status, r.out, framer, r.keep_alive ? Py_True : Py_False,
                         r.close ? Py_True : Py_False, r.body_bytes);
}

int vf_parse_response_at(PyObject *data, Py_ssize_t pos, long flags, PyObject *request_id, PyObject *extra_o,
                         vf_response *result) {
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    if (pos < 0 || pos > len) {
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return -1;
    }
    vf_header hs[VF_MAX_HEADERS];
    int count = 0, status = 0, http10 = 0;
    Py_ssize_t reason = 0, reason_n = 0, end, start = pos;
    for (;;) { /* 1xx interim responses (except 101) are dropped */
        Py_ssize_t p = status_line(buf, start, len, &status, &http10, &reason, &reason_n);
        end = p < 0 ? p : vf_scan_headers(buf, p, len, hs, &count, 502);
        if (end == -1) return -1;
        if (end == VF_INCOMPLETE) {
            if (len - pos > MAX_RESPONSE_HEAD) return vf_fail(502, "response head too large");
            return 0;
        }
        if (status >= 200 || status == 101) break;
        start = end;
    }
    if (end - pos > MAX_RESPONSE_HEAD) return vf_fail(502, "response head too large");

    int conn_close = 0, conn_keep_alive = 0, custom_connection = 0, has_xrid = 0, has_cl = 0, chunked = 0, te = 0;
    long long content_length = -1;
    for (int i = 0; i < count; i++) {
        vf_header *h = &hs[i];
        const char *v = buf + h->value;
        Py_ssize_t vn = h->value_len;
        switch (h->kind = classify(buf + h->line, h->name_len)) {
            case R_CONNECTION:
                conn_close |= vf_listed(v, vn, "close", 5);
                conn_keep_alive |= vf_listed(v, vn, "keep-alive", 10);
                custom_connection = h->drop = 1;
                break;
            case R_HOP: h->drop = 1; break;
            case R_TE: {
                Py_ssize_t k = vn; /* the final coding decides: chunked, or the body runs until close */
                while (k > 0 && v[k - 1] != ',' && v[k - 1] != ' ' && v[k - 1] != '\t') k--;
                chunked = VF_EQ(v + k, vn - k, "chunked");
                te = h->drop = 1;
                break;
            }
            case R_CL:
                if (has_cl || vn == 0 || vn > 18) return vf_fail(502, "invalid Content-Length");
                content_length = 0;
                for (Py_ssize_t k = 0; k < vn; k++) {
                    if (!Py_ISDIGIT((uint8_t)v[k])) return vf_fail(502, "invalid Content-Length");
                    content_length = content_length * 10 + (v[k] - '0');
                }
                has_cl = 1;
                break;
            case R_XRID: has_xrid = 1; break;
            default: break;
        }
    }
    if (te && has_cl) return vf_fail(502, "both Content-Length and Transfer-Encoding");
    if (custom_connection) {
        for (int i = 0; i < count; i++) {
            if (hs[i].kind != R_CONNECTION) continue;
            for (int j = 0; j < count; j++)
                if (!hs[j].drop && hs[j].kind != R_CL &&
                    vf_listed(buf + hs[i].value, hs[i].value_len, buf + hs[j].line, hs[j].name_len))
                    hs[j].drop = 1;
        }
    }
    int client10 = (flags & VF_F_HTTP10) != 0;
    int no_body = (flags & VF_F_HEAD) || status == 204 || status == 304 || status == 101;
    int keep_alive = status != 101 && (http10 ? conn_keep_alive && !conn_close : !conn_close);
    int close = (flags & VF_F_CLOSE) != 0;
    int rechunk = 0;
    if (!no_body && content_length < 0) {
        if (client10) close = 1;
        else rechunk = 1;
        if (!te) keep_alive = 0; /* close-delimited */
    }
    vf_Framer *framer = NULL;
    if (!no_body && content_length != 0) {
        framer = vf_framer_new(te ? (chunked ? VF_CHUNKED : VF_EOF) : (has_cl ? VF_LENGTH : VF_EOF), content_length,
                               rechunk, 1, 502);
        if (framer == NULL) return -1;
        if (te && !chunked) keep_alive = 0;
    }

    const char *reason_p = buf + reason;
    if (reason_n == 0) {
        reason_p = default_reason(status);
        reason_n = (Py_ssize_t)strlen(reason_p);
    }
    Py_ssize_t rid_n, extra_n = PyBytes_GET_SIZE(extra_o);
    const char *rid = PyUnicode_AsUTF8AndSize(request_id, &rid_n), *extra = PyBytes_AS_STRING(extra_o);
    if (rid == NULL) {
        Py_XDECREF(framer);
        return -1;
    }
    Py_ssize_t size = 13 + reason_n + 2 + extra_n + 2;
    for (int i = 0; i < count; i++)
        if (!hs[i].drop) size += hs[i].line_len;
    if (!has_xrid) size += 14 + rid_n + 2;
    if (rechunk) size += 28;
    if (close) size += 19;
    else if (client10) size += 24;
    Py_ssize_t body_n = framer != NULL ? len - end : 0;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size + body_n + (framer != NULL ? 64 : 0));
    if (out == NULL) {
        Py_XDECREF(framer);
        return -1;
    }
    char *w = PyBytes_AS_STRING(out);
    PUT("HTTP/1.1 ");
    PUTN(buf + start + 9, 3);
    *w++ = ' ';
    PUTN(reason_p, reason_n);
    PUT("\r\n");
    for (int i = 0; i < count;) {
        if (hs[i].drop) {
            i++;
            continue;
        }
        int j = i + 1;
        while (j < count && !hs[j].drop) j++;
        PUTN(buf + hs[i].line, hs[j - 1].line + hs[j - 1].line_len - hs[i].line);
        i = j;
    }
    if (!has_xrid) {
        PUT("X-Request-ID: ");
        PUTN(rid, rid_n);
        PUT("\r\n");
    }
    PUTN(extra, extra_n);
    if (rechunk) PUT("Transfer-Encoding: chunked\r\n");
    if (close) PUT("Connection: close\r\n");
    else if (client10) PUT("Connection: keep-alive\r\n");
    PUT("\r\n");
    Py_ssize_t consumed = end;
    if (framer != NULL) {
        Py_ssize_t written = vf_framer_run(framer, buf + end, body_n, w);
        if (written < 0) goto error;
        w += written;
        consumed = framer->done ? end + framer->end : len;
    }
    if (_PyBytes_Resize(&out, w - PyBytes_AS_STRING(out)) < 0) {
        Py_XDECREF(framer);
        return -1;
    }
    result->end = consumed;
    result->status = status;
    result->out = out;
    result->keep_alive = keep_alive;
    result->close = close;
    result->body_bytes = framer != NULL ? framer->decoded : 0;
    if (framer != NULL && framer->done) Py_CLEAR(framer);
    result->framer = framer;
    return 1;
error:
    Py_DECREF(out);
    Py_XDECREF(framer);
    return -1;
}
