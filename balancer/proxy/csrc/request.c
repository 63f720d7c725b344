/* Request heads: parse and validate one complete head, build the head sent upstream in the same call.
 *
 * The upstream head is spliced from the original bytes: header lines the proxy does not rewrite are copied as
 * they came, hop-by-hop ones (and those named in Connection) are left out, then X-Forwarded-For/-Proto,
 * X-Request-ID, the loop markers (Via, X-VeloFlux-Hops) and the framing the proxy uses are appended. */
#include "codec.h"

enum { K_OTHER, K_HOST, K_CL, K_TE, K_CONNECTION, K_UPGRADE, K_EXPECT, K_XFF, K_XFP, K_XRID, K_COOKIE, K_ACCEPT,
       K_HOP, K_HOPS };

/* Loop protection: every forwarded request carries X-VeloFlux-Hops (the count of VeloFlux proxies it went
 * through, ours included); a request that arrives having made max_hops of them is answered 508. */
static int max_hops = 5;

void vf_set_max_hops(int n) { max_hops = n < 1 ? 1 : n > 999 ? 999 : n; }

static int classify(const char *name, Py_ssize_t n) {
    switch (n) {
        case 2: return VF_EQ(name, n, "te") ? K_HOP : K_OTHER;
        case 4: return VF_EQ(name, n, "host") ? K_HOST : K_OTHER;
        case 6:
            if (VF_EQ(name, n, "cookie")) return K_COOKIE;
            if (VF_EQ(name, n, "accept")) return K_ACCEPT;
            return VF_EQ(name, n, "expect") ? K_EXPECT : K_OTHER;
        case 7:
            if (VF_EQ(name, n, "upgrade")) return K_UPGRADE;
            return VF_EQ(name, n, "trailer") ? K_HOP : K_OTHER;
        case 10:
            if (VF_EQ(name, n, "connection")) return K_CONNECTION;
            return VF_EQ(name, n, "keep-alive") ? K_HOP : K_OTHER;
        case 12: return VF_EQ(name, n, "x-request-id") ? K_XRID : K_OTHER;
        case 14:
            if (VF_EQ(name, n, "content-length")) return K_CL;
            return VF_EQ(name, n, "http2-settings") ? K_HOP : K_OTHER; /* only meaningful with Upgrade: h2c */
        case 15:
            if (VF_EQ(name, n, "x-forwarded-for")) return K_XFF;
            return VF_EQ(name, n, "x-veloflux-hops") ? K_HOPS : K_OTHER;
        case 16: return VF_EQ(name, n, "proxy-connection") ? K_HOP : K_OTHER;
        case 17:
            if (VF_EQ(name, n, "transfer-encoding")) return K_TE;
            return VF_EQ(name, n, "x-forwarded-proto") ? K_XFP : K_OTHER;
        default: return K_OTHER;
    }
}

/* Host or authority: `[v6]` or `name`, then an optional `:port` (1-5 digits).  Returns the length without the
 * port, or -1 when invalid. */
static Py_ssize_t host_name_len(const char *v, Py_ssize_t n) {
    Py_ssize_t i = 0;
    if (n > 0 && v[0] == '[') {
        i = 1;
        while (i < n && (Py_ISXDIGIT((uint8_t)v[i]) || v[i] == ':' || v[i] == '.')) i++;
        if (i == 1 || i >= n || v[i] != ']') return -1;
        i++;
    } else {
        while (i < n && (Py_ISALNUM((uint8_t)v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-')) i++;
        if (i == 0) return -1;
    }
    Py_ssize_t name = i;
    if (i < n) {
        if (v[i] != ':') return -1;
        Py_ssize_t digits = n - i - 1;
        if (digits < 1 || digits > 5) return -1;
        for (i++; i < n; i++)
            if (!Py_ISDIGIT((uint8_t)v[i])) return -1;
    }
    return name;
}

/* A worker serves few host names, so the str of each recent one (its hash computed by the first route lookup)
 * is kept and handed out again: a small table indexed by the name's length and some of its characters. */
#define HOST_CACHE 64
static PyObject *host_cache[HOST_CACHE];

static int same_host(PyObject *cached, const char *v, Py_ssize_t n) {
    if (cached == NULL || PyUnicode_GET_LENGTH(cached) != n) return 0;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(cached);
    for (Py_ssize_t i = 0; i < n; i++)
        if (c[i] != (Py_UCS1)Py_TOLOWER((uint8_t)v[i])) return 0;
    return 1;
}

static PyObject *host_str(const char *v, Py_ssize_t n) {
    if (n > 0 && v[0] != '[')
        while (n > 0 && v[n - 1] == '.') n--;
    PyObject **slot = NULL;
    if (n > 0) {
        size_t key = (size_t)n * 31u + Py_TOLOWER((uint8_t)v[0]) * 7u + Py_TOLOWER((uint8_t)v[n / 2]) * 3u +
                     Py_TOLOWER((uint8_t)v[n - 1]);
        slot = &host_cache[key % HOST_CACHE];
        if (same_host(*slot, v, n)) return Py_NewRef(*slot);
    }
    PyObject *s = PyUnicode_New(n, 127);
    if (s == NULL) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) out[i] = (Py_UCS1)Py_TOLOWER((uint8_t)v[i]);
    if (slot != NULL) Py_XSETREF(*slot, Py_NewRef(s));
    return s;
}

static int valid_request_id(const char *v, Py_ssize_t n) {
    if (n < 1 || n > 128) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)v[i];
        if (!(Py_ISALNUM(c) || (c && strchr("._:+/=@-", c) != NULL))) return 0;
    }
    return 1;
}

static PyObject *method_cache[8];
static const char *const method_names[8] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"};

static PyObject *method_bytes(const char *m, Py_ssize_t n) {
    for (int i = 0; i < 8; i++) {
        if ((Py_ssize_t)strlen(method_names[i]) == n && memcmp(m, method_names[i], n) == 0) {
            if (method_cache[i] == NULL && (method_cache[i] = PyBytes_FromStringAndSize(m, n)) == NULL) return NULL;
            return Py_NewRef(method_cache[i]);
        }
    }
    return PyBytes_FromStringAndSize(m, n);
}

/* Joins the values of every header of one kind with sep (a single one is returned as is). */
static PyObject *joined(const char *buf, const vf_header *hs, int count, int kind, const char *sep) {
    Py_ssize_t size = 0, seps = 0, sep_n = (Py_ssize_t)strlen(sep);
    for (int i = 0; i < count; i++)
        if (hs[i].kind == kind) size += hs[i].value_len + (seps++ ? sep_n : 0);
    if (!seps) Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) return NULL;
    char *w = PyBytes_AS_STRING(out);
    int first = 1;
    for (int i = 0; i < count; i++) {
        if (hs[i].kind != kind) continue;
        if (!first) w = (char *)memcpy(w, sep, sep_n) + sep_n;
        first = 0;
        w = (char *)memcpy(w, buf + hs[i].value, hs[i].value_len) + hs[i].value_len;
    }
    return out;
}

static int check_version(const char *v, Py_ssize_t avail, int *http10) {
    static const char pattern[] = "HTTP/1.1\r\n";
    for (Py_ssize_t i = 0; i < avail && i < 10; i++) {
        if (i == 5 || i == 7) {
            if (!Py_ISDIGIT((uint8_t)v[i])) return vf_fail(400, "invalid HTTP version");
        } else if (v[i] != pattern[i]) {
            return vf_fail(400, "invalid request line");
        }
    }
    if (avail < 10) return VF_INCOMPLETE;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return vf_fail(400, "unsupported HTTP version");
    *http10 = v[7] == '0';
    return 0;
}

#define PUT(lit) (w = (char *)memcpy(w, (lit), sizeof(lit) - 1) + sizeof(lit) - 1)
#define PUTN(src, n) (w = (char *)memcpy(w, (src), (n)) + (n))

PyObject *vf_parse_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[3]) || !PyBytes_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "parse_request(data: bytes, pos, max_head, peer: bytes, scheme: bytes, "
                                         "trusted)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]), max_head = PyLong_AsSsize_t(args[2]);
    int trusted = PyObject_IsTrue(args[5]);
    if ((pos == -1 || max_head == -1 || trusted < 0) && PyErr_Occurred()) return NULL;
    return vf_parse_request_at(args[0], pos, max_head, args[3], args[4], trusted);
}

PyObject *vf_parse_request_at(PyObject *data, Py_ssize_t pos, Py_ssize_t max_head, PyObject *peer_o,
                              PyObject *scheme_o, int trusted) {
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    if (pos < 0 || pos > len) {
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return NULL;
    }
    Py_ssize_t p = pos;
    while (p + 1 < len && buf[p] == '\r' && buf[p + 1] == '\n') p += 2; /* empty lines before a request line */
    if (p + 1 == len && buf[p] == '\r') Py_RETURN_NONE;
    Py_ssize_t start = p;
    while (p < len && vf_tchar[(uint8_t)buf[p]]) p++;
    const char *method = buf + start;
    Py_ssize_t method_n = p - start;
    Py_ssize_t target = p + 1, target_n = 0;
    int http10 = 0, rc = VF_INCOMPLETE;
    if (p < len) {
        if (buf[p] != ' ' || method_n == 0) return vf_fail(400, "invalid request line"), NULL;
        /* a request target is visible ASCII (RFC 9112 3.2, RFC 3986: anything else is percent-encoded) */
        for (p = target; p < len && (uint8_t)buf[p] > 0x20 && (uint8_t)buf[p] < 0x7f; p++) {}
        target_n = p - target;
        if (p < len) {
            if (buf[p] != ' ' || target_n == 0) return vf_fail(400, "invalid request line"), NULL;
            rc = check_version(buf + p + 1, len - p - 1, &http10);
            if (rc == -1) return NULL;
        }
    }
    vf_header hs[VF_MAX_HEADERS];
    int count = 0;
    Py_ssize_t end = VF_INCOMPLETE;
    if (rc == 0) {
        end = vf_scan_headers(buf, p + 11, len, hs, &count, 400);
        if (end == -1) return NULL;
    }
    if (end == VF_INCOMPLETE) {
        if (len - start > max_head) return vf_fail(431, "request head too large"), NULL;
        Py_RETURN_NONE;
    }
    if (end - start > max_head) return vf_fail(431, "request head too large"), NULL;

    /* the headers the proxy reads or rewrites */
    int host_i = -1, xfp_i = -1, xrid_i = -1, accept_i = -1, upgrade_i = -1, custom_connection = 0;
    int conn_close = 0, conn_keep_alive = 0, conn_upgrade = 0, chunked = 0, expect = 0, has_cl = 0, has_xff = 0;
    int has_cookie = 0, hops = 0;
    long long content_length = -1;
    for (int i = 0; i < count; i++) {
        vf_header *h = &hs[i];
        const char *v = buf + h->value;
        Py_ssize_t vn = h->value_len;
        int kind = h->kind = classify(buf + h->line, h->name_len);
        switch (kind) {
            case K_HOST:
                if (host_i >= 0) return vf_fail(400, "duplicate Host"), NULL;
                if (host_name_len(v, vn) < 0) return vf_fail(400, "invalid Host"), NULL;
                host_i = i;
                break;
            case K_CL:
                if (has_cl) return vf_fail(400, "duplicate Content-Length"), NULL;
                if (vn == 0 || vn > 18) return vf_fail(400, "invalid Content-Length"), NULL;
                content_length = 0;
                for (Py_ssize_t k = 0; k < vn; k++) {
                    if (!Py_ISDIGIT((uint8_t)v[k])) return vf_fail(400, "invalid Content-Length"), NULL;
                    content_length = content_length * 10 + (v[k] - '0');
                }
                has_cl = 1;
                break;
            case K_TE:
                /* HTTP/1.0 has no chunked coding: a peer that reads the message as 1.0 frames it differently
                 * (request smuggling), so it is refused as HAProxy does */
                if (http10) return vf_fail(400, "Transfer-Encoding in an HTTP/1.0 request"), NULL;
                if (chunked) return vf_fail(400, "duplicate Transfer-Encoding"), NULL;
                if (!VF_EQ(v, vn, "chunked")) return vf_fail(400, "unsupported transfer coding"), NULL;
                chunked = 1;
                h->drop = 1;
                break;
            case K_CONNECTION:
                conn_close |= vf_listed(v, vn, "close", 5);
                conn_keep_alive |= vf_listed(v, vn, "keep-alive", 10);
                conn_upgrade |= vf_listed(v, vn, "upgrade", 7);
                custom_connection = 1;
                h->drop = 1;
                break;
            case K_EXPECT:
                if (VF_EQ(v, vn, "100-continue")) {
                    expect = 1;
                    h->drop = 1;
                }
                break;
            case K_UPGRADE: upgrade_i = i; h->drop = 1; break;
            case K_XFF: has_xff = 1; h->drop = 1; break;
            case K_XFP: xfp_i = i; h->drop = 1; break;
            case K_XRID:
                if (valid_request_id(v, vn)) xrid_i = i;
                h->drop = 1;
                break;
            case K_COOKIE: has_cookie = 1; break;
            case K_ACCEPT: accept_i = i; break;
            case K_HOP: h->drop = 1; break;
            case K_HOPS: /* the largest of the values (several lines: each proxy may have added one) */
                if (vn < 1 || vn > 3) return vf_fail(400, "invalid X-VeloFlux-Hops"), NULL;
                for (Py_ssize_t k = 0, n = 0; k < vn; k++) {
                    if (!Py_ISDIGIT((uint8_t)v[k])) return vf_fail(400, "invalid X-VeloFlux-Hops"), NULL;
                    n = n * 10 + (v[k] - '0');
                    if (k == vn - 1 && n > hops) hops = (int)n;
                }
                h->drop = 1;
                break;
            default: break;
        }
    }
    if (hops >= max_hops) return vf_fail(508, "loop detected: too many VeloFlux proxies on the way"), NULL;
    /* Upgrade: h2c asks the backend to switch to cleartext HTTP/2, which the proxy does not speak: it is
     * removed (with HTTP2-Settings) and the request goes on as HTTP/1.1; other upgrades (WebSocket) tunnel */
    if (upgrade_i >= 0 && vf_listed(buf + hs[upgrade_i].value, hs[upgrade_i].value_len, "h2c", 3)) upgrade_i = -1;
    if (has_cl && chunked) return vf_fail(400, "both Content-Length and Transfer-Encoding"), NULL;
    if (custom_connection) { /* headers named in Connection are hop-by-hop too (never Host or the framing) */
        for (int i = 0; i < count; i++) {
            if (hs[i].kind != K_CONNECTION) continue;
            for (int j = 0; j < count; j++)
                if (!hs[j].drop && hs[j].kind != K_HOST && hs[j].kind != K_CL &&
                    vf_listed(buf + hs[i].value, hs[i].value_len, buf + hs[j].line, hs[j].name_len))
                    hs[j].drop = 1;
        }
    }

    /* request target: origin-form, "*" for OPTIONS, or absolute-form whose authority replaces Host */
    const char *path = buf + target, *authority = NULL;
    Py_ssize_t path_n = target_n, authority_n = 0;
    if (path[0] != '/' && !(target_n == 1 && path[0] == '*' && VF_EQ(method, method_n, "options"))) {
        Py_ssize_t skip = 0;
        if (target_n > 7 && VF_EQ(path, 7, "http://")) skip = 7;
        else if (target_n > 8 && VF_EQ(path, 8, "https://")) skip = 8;
        if (!skip) return vf_fail(400, "request target must be an absolute path or an absolute URL"), NULL;
        authority = path + skip;
        const char *slash = memchr(authority, '/', target_n - skip);
        authority_n = slash ? slash - authority : target_n - skip;
        if (authority_n == 0 || memchr(authority, '@', authority_n) != NULL ||
            host_name_len(authority, authority_n) < 0)
            return vf_fail(400, "invalid authority in the request target"), NULL;
        path = slash ? slash : "/";
        path_n = slash ? target_n - skip - authority_n : 1;
    }
    if (authority == NULL && host_i < 0 && !http10) return vf_fail(400, "missing Host header"), NULL;

    vf_Request *r = PyObject_New(vf_Request, &vf_RequestType);
    if (r == NULL) return NULL;
    r->method = r->path = r->host = r->request_id = r->upstream = NULL;
    r->xff = r->cookie = r->accept = r->upgrade = NULL;
    r->end = end;
    r->content_length = content_length;
    r->http10 = (char)http10;
    r->keep_alive = (char)(http10 ? (conn_keep_alive && !conn_close) : !conn_close);
    r->chunked = (char)chunked;
    r->expect_continue = (char)(expect && !http10);
    r->flags = (method_n == 4 && memcmp(method, "HEAD", 4) == 0 ? VF_F_HEAD : 0) | (http10 ? VF_F_HTTP10 : 0);
    const char *hv = authority ? authority : (host_i >= 0 ? buf + hs[host_i].value : "");
    Py_ssize_t hn = authority ? authority_n : (host_i >= 0 ? hs[host_i].value_len : 0);
    if ((r->method = method_bytes(method, method_n)) == NULL ||
        (r->path = PyUnicode_DecodeLatin1(path, path_n, NULL)) == NULL ||
        (r->host = host_str(hv, hn ? host_name_len(hv, hn) : 0)) == NULL ||
        (r->xff = has_xff ? joined(buf, hs, count, K_XFF, ", ") : Py_NewRef(Py_None)) == NULL ||
        (r->cookie = has_cookie ? joined(buf, hs, count, K_COOKIE, "; ") : Py_NewRef(Py_None)) == NULL ||
        (r->accept = accept_i >= 0 ? PyBytes_FromStringAndSize(buf + hs[accept_i].value, hs[accept_i].value_len)
                                   : Py_NewRef(Py_None)) == NULL ||
        (r->upgrade = upgrade_i >= 0 && conn_upgrade
                          ? PyBytes_FromStringAndSize(buf + hs[upgrade_i].value, hs[upgrade_i].value_len)
                          : Py_NewRef(Py_None)) == NULL)
        goto error;
    char rid[VF_REQUEST_ID_LEN];
    const char *rid_p = rid;
    Py_ssize_t rid_n;
    if (xrid_i >= 0) {
        rid_p = buf + hs[xrid_i].value;
        rid_n = hs[xrid_i].value_len;
    } else {
        rid_n = vf_write_request_id(rid);
    }
    if ((r->request_id = PyUnicode_DecodeASCII(rid_p, rid_n, NULL)) == NULL) goto error;

    /* the upstream head */
    const char *peer = PyBytes_AS_STRING(peer_o), *scheme = PyBytes_AS_STRING(scheme_o);
    Py_ssize_t peer_n = PyBytes_GET_SIZE(peer_o), scheme_n = PyBytes_GET_SIZE(scheme_o);
    int keep_xff = trusted && r->xff != Py_None && PyBytes_GET_SIZE(r->xff) > 0;
    const char *proto = scheme;
    Py_ssize_t proto_n = scheme_n;
    if (trusted && xfp_i >= 0 && hs[xfp_i].value_len > 0) {
        proto = buf + hs[xfp_i].value;
        proto_n = hs[xfp_i].value_len;
    }
    Py_ssize_t size = method_n + 1 + path_n + 11 + 17 + peer_n + 2 + 19 + proto_n + 2 + 14 + rid_n + 2 + 2;
    if (keep_xff) size += PyBytes_GET_SIZE(r->xff) + 2;
    if (authority && host_i < 0) size += 6 + authority_n + 2;
    for (int i = 0; i < count; i++)
        if (!hs[i].drop) size += (authority && i == host_i) ? 6 + authority_n + 2 : hs[i].line_len;
    char hops_text[4];
    int hops_n = snprintf(hops_text, sizeof hops_text, "%d", hops + 1);
    size += 19 + 17 + hops_n + 2;
    if (chunked) size += 28;
    if (r->upgrade != Py_None) size += 21 + 9 + PyBytes_GET_SIZE(r->upgrade) + 2;
    if ((r->upstream = PyBytes_FromStringAndSize(NULL, size)) == NULL) goto error;
    char *w = PyBytes_AS_STRING(r->upstream);
    PUTN(method, method_n);
    *w++ = ' ';
    PUTN(path, path_n);
    PUT(" HTTP/1.1\r\n");
    if (authority && host_i < 0) {
        PUT("Host: ");
        PUTN(authority, authority_n);
        PUT("\r\n");
    }
    for (int i = 0; i < count;) { /* runs of kept lines are contiguous in the input: one copy per run */
        if (hs[i].drop) {
            i++;
        } else if (authority && i == host_i) {
            PUT("Host: ");
            PUTN(authority, authority_n);
            PUT("\r\n");
            i++;
        } else {
            int j = i + 1;
            while (j < count && !hs[j].drop && !(authority && j == host_i)) j++;
            Py_ssize_t from = hs[i].line, to = hs[j - 1].line + hs[j - 1].line_len;
            PUTN(buf + from, to - from);
            i = j;
        }
    }
    PUT("X-Forwarded-For: ");
    if (keep_xff) {
        PUTN(PyBytes_AS_STRING(r->xff), PyBytes_GET_SIZE(r->xff));
        PUT(", ");
    }
    PUTN(peer, peer_n);
    PUT("\r\nX-Forwarded-Proto: ");
    PUTN(proto, proto_n);
    PUT("\r\nX-Request-ID: ");
    PUTN(rid_p, rid_n);
    PUT("\r\nVia: 1.1 veloflux\r\nX-VeloFlux-Hops: ");
    PUTN(hops_text, hops_n);
    PUT("\r\n");
    if (chunked) PUT("Transfer-Encoding: chunked\r\n");
    if (r->upgrade != Py_None) {
        PUT("Connection: Upgrade\r\nUpgrade: ");
        PUTN(PyBytes_AS_STRING(r->upgrade), PyBytes_GET_SIZE(r->upgrade));
        PUT("\r\n");
    }
    PUT("\r\n");
    if (w != PyBytes_AS_STRING(r->upstream) + size) {
        PyErr_SetString(PyExc_SystemError, "upstream head size mismatch");
        goto error;
    }
    return (PyObject *)r;
error:
    Py_DECREF(r);
    return NULL;
}
