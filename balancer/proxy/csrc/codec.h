/* Shared declarations of the proxy's compiled HTTP/1.1 head codec (module balancer.proxy._codec). */
#ifndef VF_CODEC_H
#define VF_CODEC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define VF_MAX_HEADERS 256
/* parse_response flags */
#define VF_F_HEAD 1   /* the request was HEAD: no body whatever the head says */
#define VF_F_HTTP10 2 /* the client speaks HTTP/1.0: no chunked encoding towards it */
#define VF_F_CLOSE 4  /* the client connection closes after this response */
#define VF_INCOMPLETE (-2)

/* character classes */
extern uint8_t vf_tchar[256]; /* RFC 9110 token characters */
extern uint8_t vf_fchar[256]; /* field-value characters: VCHAR, obs-text, SP, HTAB */

/* A parsed request head (parse_request fills it; reqtype.c defines the Python type) */
typedef struct {
    PyObject_HEAD
    Py_ssize_t end;
    PyObject *method;     /* bytes */
    PyObject *path;       /* str (latin-1): origin-form target, or the path of an absolute-form one */
    PyObject *host;       /* str: lower-case, no port, no trailing dot ("" for HTTP/1.0 without Host) */
    PyObject *request_id; /* str: the client's valid X-Request-ID, or a new one */
    PyObject *upstream;   /* bytes: the head to send to the backend */
    PyObject *xff;        /* bytes | None: the client's X-Forwarded-For (several joined with ", ") */
    PyObject *cookie;     /* bytes | None */
    PyObject *accept;     /* bytes | None */
    PyObject *upgrade;    /* bytes | None: Upgrade value when the request asks for one (Connection: upgrade) */
    long long content_length;
    int flags; /* parse_response flags this request implies (HEAD, HTTP/1.0 client) */
    char http10, keep_alive, chunked, expect_continue;
} vf_Request;

extern PyObject *vf_HeadError;
extern PyTypeObject vf_RequestType;
extern PyTypeObject vf_FramerType;

/* The request-id field of a parsed request, or NULL when the object is not one (reqtype.c). */
PyObject *vf_request_id_of(PyObject *request);

/* Sets HeadError(status, message) and returns -1. */
int vf_fail(int status, const char *message);

/* Case-insensitive comparison of a header name with a lower-case literal of the same length. */
static inline int vf_eq(const char *s, Py_ssize_t n, const char *lit, Py_ssize_t lit_n) {
    if (n != lit_n) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != lit[i]) return 0;
    return 1;
}
#define VF_EQ(s, n, lit) vf_eq((s), (n), (lit), (Py_ssize_t)sizeof(lit) - 1)

typedef struct {
    Py_ssize_t line;      /* offset of the line in the buffer */
    Py_ssize_t line_len;  /* including CRLF */
    Py_ssize_t name_len;  /* the name starts at line */
    Py_ssize_t value;     /* offset of the value, OWS trimmed */
    Py_ssize_t value_len;
    int kind;
    int drop;
} vf_header;

/* Parses header lines from pos up to and including the empty line.  Returns the offset after the empty line,
 * VF_INCOMPLETE when more bytes are needed, or -1 with HeadError(status) set. */
Py_ssize_t vf_scan_headers(const char *buf, Py_ssize_t pos, Py_ssize_t len, vf_header *hs, int *count, int status);

/* Whether a comma-separated Connection value lists the token (case-insensitive). */
int vf_listed(const char *value, Py_ssize_t n, const char *token, Py_ssize_t token_n);
void vf_set_max_hops(int n);

/* Body framing (body.c) */
enum { VF_LENGTH = 0, VF_CHUNKED = 1, VF_EOF = 2 };
typedef struct {
    PyObject_HEAD
    int mode;
    int rechunk;    /* output chunked: canonical re-encoding of chunked input, or chunks of close-delimited input */
    int terminate;  /* write the last chunk when a chunked input ends */
    int state;
    char done;
    int size_digits;
    long long remaining;  /* LENGTH: body bytes left; CHUNKED: bytes left in the current chunk */
    long long decoded;    /* payload bytes seen so far */
    Py_ssize_t end;       /* where the message ended in the last input (when done) */
    Py_ssize_t trailer;   /* trailer bytes so far */
    int status;           /* HeadError status on a framing error */
} vf_Framer;

vf_Framer *vf_framer_new(int mode, long long length, int rechunk, int terminate, int status);
/* Runs the framer over in[0:n], writing at most n + 64 bytes to out.  Returns bytes written, or -1 (error set). */
Py_ssize_t vf_framer_run(vf_Framer *f, const char *in, Py_ssize_t n, char *out);

/* Request ids */
PyObject *vf_new_request_id(void);
Py_ssize_t vf_write_request_id(char *out);
#define VF_REQUEST_ID_LEN 20

PyObject *vf_parse_request(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
/* parse_request with C arguments (data, peer and scheme are bytes) */
PyObject *vf_parse_request_at(PyObject *data, Py_ssize_t pos, Py_ssize_t max_head, PyObject *peer, PyObject *scheme,
                              int trusted);
PyObject *vf_parse_response(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
/* parse_response with C arguments and results: 1 parsed (result filled, new references), 0 the head is not complete,
 * -1 with HeadError or another error set */
typedef struct {
    Py_ssize_t end;     /* where the response (or what arrived of its body) ends in data */
    int status;
    PyObject *out;      /* bytes for the client: the rewritten head and the body bytes that came with it */
    vf_Framer *framer;  /* the rest of the body, or NULL when the response is complete */
    int keep_alive, close;
    long long body_bytes;
} vf_response;
int vf_parse_response_at(PyObject *data, Py_ssize_t pos, long flags, PyObject *request_id, PyObject *extra,
                         vf_response *result);

#endif
