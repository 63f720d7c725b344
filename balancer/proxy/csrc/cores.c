/* The compiled cores of the per-request objects: ExchangeCore, ClientCore, UpstreamCore (see hot.h). */
#include "hot.h"

#include <structmember.h>

/* --- the cores: fields shared by C and Python, garbage-collected ----------------------------------------- */

static int idempotent(PyObject *method) {
    const char *m = PyBytes_AS_STRING(method);
    switch (PyBytes_GET_SIZE(method)) {
        case 3: return !memcmp(m, "GET", 3) || !memcmp(m, "PUT", 3);
        case 4: return !memcmp(m, "HEAD", 4);
        case 5: return !memcmp(m, "TRACE", 5);
        case 6: return !memcmp(m, "DELETE", 6);
        case 7: return !memcmp(m, "OPTIONS", 7);
        default: return 0;
    }
}

vf_Exchange *vf_exchange_make(PyTypeObject *type, PyObject *client, PyObject *req) {
    if (!Py_IS_TYPE(req, &vf_RequestType) || !VF_IS(client, &vf_ClientType)) {
        PyErr_SetString(PyExc_TypeError, "Exchange(client: ClientProtocol, req: Request)");
        return NULL;
    }
    vf_Exchange *ex = (vf_Exchange *)type->tp_alloc(type, 0);
    if (ex == NULL) return NULL;
    vf_Request *r = (vf_Request *)req;
    ex->client = Py_NewRef(client);
    ex->app = Py_NewRef(((vf_Client *)client)->app);
    ex->req = Py_NewRef(req);
    ex->request_id = Py_NewRef(r->request_id);
    ex->route = Py_NewRef(Py_None);
    ex->backend = Py_NewRef(Py_None);
    ex->conn = Py_NewRef(Py_None);
    ex->set_cookie = Py_NewRef(vf_s_empty);
    ex->body_buf = PyTuple_New(0);
    ex->retained = idempotent(r->method) ? PyTuple_New(0) : Py_NewRef(Py_None);
    ex->close_after = !r->keep_alive;
    return ex;
}

static PyObject *exchange_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *client, *req;
    if (!PyArg_ParseTuple(args, "OO:Exchange", &client, &req)) return NULL;
    return (PyObject *)vf_exchange_make(type, client, req);
}

static int exchange_traverse(vf_Exchange *ex, visitproc visit, void *arg) {
    Py_VISIT(ex->client);
    Py_VISIT(ex->app);
    Py_VISIT(ex->req);
    Py_VISIT(ex->route);
    Py_VISIT(ex->backend);
    Py_VISIT(ex->conn);
    Py_VISIT(ex->body_buf);
    Py_VISIT(ex->retained);
    return 0;
}

static int exchange_clear(vf_Exchange *ex) {
    Py_CLEAR(ex->client);
    Py_CLEAR(ex->app);
    Py_CLEAR(ex->req);
    Py_CLEAR(ex->request_id);
    Py_CLEAR(ex->route);
    Py_CLEAR(ex->backend);
    Py_CLEAR(ex->conn);
    Py_CLEAR(ex->set_cookie);
    Py_CLEAR(ex->body_buf);
    Py_CLEAR(ex->retained);
    return 0;
}

VF_GC_DEALLOC(exchange, vf_Exchange)

static PyMemberDef exchange_members[] = {
    OBJ(vf_Exchange, client, NULL), OBJ(vf_Exchange, app, NULL), OBJ(vf_Exchange, req, NULL),
    OBJ(vf_Exchange, request_id, NULL), OBJ(vf_Exchange, route, NULL), OBJ(vf_Exchange, backend, NULL),
    OBJ(vf_Exchange, conn, "the upstream connection carrying it"),
    OBJ(vf_Exchange, set_cookie, "a Set-Cookie header line to add to the response"),
    OBJ(vf_Exchange, body_buf, "body bytes (framed for the backend) waiting for a connection"),
    OBJ(vf_Exchange, retained, "the body kept for a retry (None: no retry possible)"),
    {"deadline", T_DOUBLE, offsetof(vf_Exchange, deadline), 0, NULL},
    {"started", T_DOUBLE, offsetof(vf_Exchange, started), 0, NULL},
    {"body_in", T_LONGLONG, offsetof(vf_Exchange, body_in), 0, NULL},
    {"resp_bytes", T_LONGLONG, offsetof(vf_Exchange, resp_bytes), 0, NULL},
    {"early_status", T_INT, offsetof(vf_Exchange, early_status), 0, NULL},
    {"attempts", T_INT, offsetof(vf_Exchange, attempts), 0, NULL},
    {"status", T_INT, offsetof(vf_Exchange, status), 0, NULL},
    FLAG(vf_Exchange, close_after), FLAG(vf_Exchange, body_done),
    {"holding", T_BOOL, offsetof(vf_Exchange, holding), 0, "counted in backend.st.inflight"},
    FLAG(vf_Exchange, resp_started), FLAG(vf_Exchange, resp_done),
    {"resp_chunked", T_BOOL, offsetof(vf_Exchange, resp_chunked), 0,
     "the response is chunked towards the client while the backend's was not"},
    {"until_close", T_BOOL, offsetof(vf_Exchange, until_close), 0, "the response body ends when the backend closes"},
    {NULL, 0, 0, 0, NULL},
};

VF_CORE_TYPE(vf_ExchangeType, "ExchangeCore", vf_Exchange, exchange, NULL, NULL,
             "The fields of one request/response exchange (balancer.proxy.exchange.Exchange).")

static PyObject *client_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Client *c = (vf_Client *)type->tp_alloc(type, 0);
    if (c == NULL) return NULL;
    c->app = Py_NewRef(Py_None);
    c->transport = Py_NewRef(Py_None);
    c->active = Py_NewRef(Py_None);
    c->queue = Py_NewRef(Py_None);
    c->buffer = Py_NewRef(vf_s_empty);
    c->body = Py_NewRef(Py_None);
    c->reading = Py_NewRef(Py_None);
    c->tunnel = Py_NewRef(Py_None);
    c->peer = Py_NewRef(vf_s_empty);
    c->scheme = Py_NewRef(vf_s_empty);
    return (PyObject *)c;
}

static int client_traverse(vf_Client *c, visitproc visit, void *arg) {
    Py_VISIT(c->app);
    Py_VISIT(c->transport);
    Py_VISIT(c->write);
    Py_VISIT(c->active);
    Py_VISIT(c->queue);
    Py_VISIT(c->body);
    Py_VISIT(c->reading);
    Py_VISIT(c->tunnel);
    return 0;
}

static int client_clear(vf_Client *c) {
    Py_CLEAR(c->app);
    Py_CLEAR(c->transport);
    Py_CLEAR(c->write);
    Py_CLEAR(c->active);
    Py_CLEAR(c->queue);
    Py_CLEAR(c->buffer);
    Py_CLEAR(c->body);
    Py_CLEAR(c->reading);
    Py_CLEAR(c->tunnel);
    Py_CLEAR(c->peer);
    Py_CLEAR(c->scheme);
    return 0;
}

VF_GC_DEALLOC(client, vf_Client)

static PyMethodDef client_methods[] = {
    {"data_received", (PyCFunction)vf_client_data_received, METH_O,
     "the compiled fast path; anything else goes to _data_received"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef client_members[] = {
    OBJ(vf_Client, app, NULL),
    OBJ(vf_Client, active, "the exchange at the head of the pipeline, the only one talking to a backend"),
    OBJ(vf_Client, queue, "pipelined exchanges waiting for their turn"),
    OBJ(vf_Client, buffer, "the start of a request head that is not complete yet"),
    OBJ(vf_Client, body, "the framing of the request body being read"),
    OBJ(vf_Client, reading, "the exchange whose request body is being read"),
    OBJ(vf_Client, tunnel, NULL), OBJ(vf_Client, peer, "the peer address, bytes"), OBJ(vf_Client, scheme, NULL),
    {"head_deadline", T_DOUBLE, offsetof(vf_Client, head_deadline), 0, NULL},
    {"idle_since", T_DOUBLE, offsetof(vf_Client, idle_since), 0, NULL},
    {"max_head", T_PYSSIZET, offsetof(vf_Client, max_head), 0, NULL},
    FLAG(vf_Client, closing), FLAG(vf_Client, closed), FLAG(vf_Client, write_paused), FLAG(vf_Client, read_paused),
    {"reads_held", T_BOOL, offsetof(vf_Client, reads_held), 0,
     "reading paused by a backend connection that cannot take more request body"},
    {"in_head", T_BOOL, offsetof(vf_Client, in_head), 0, "some bytes of a request head arrived, not all of them"},
    {"trusted", T_BOOL, offsetof(vf_Client, trusted), 0, "the peer is a trusted proxy: keep its X-Forwarded-*"},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *client_get_transport(vf_Client *c, void *closure) { return Py_NewRef(c->transport); }

static int client_set_transport(vf_Client *c, PyObject *value, void *closure) {
    return vf_set_bound(&c->transport, &c->write, value, vf_s_write);
}

static PyGetSetDef client_getset[] = {
    {"transport", (getter)client_get_transport, (setter)client_set_transport, "the client socket's transport", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

VF_CORE_TYPE(vf_ClientType, "ClientCore", vf_Client, client, client_methods, client_getset,
             "The fields and compiled data_received of a client connection (protocol.ClientProtocol).")

static PyObject *upstream_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Upstream *u = (vf_Upstream *)type->tp_alloc(type, 0);
    if (u == NULL) return NULL;
    u->pool = Py_NewRef(Py_None);
    u->key = Py_NewRef(Py_None);
    u->transport = Py_NewRef(Py_None);
    u->exchange = Py_NewRef(Py_None);
    u->buffer = Py_NewRef(vf_s_empty);
    u->body = Py_NewRef(Py_None);
    return (PyObject *)u;
}

static int upstream_traverse(vf_Upstream *u, visitproc visit, void *arg) {
    Py_VISIT(u->pool);
    Py_VISIT(u->transport);
    Py_VISIT(u->write);
    Py_VISIT(u->exchange);
    Py_VISIT(u->body);
    return 0;
}

static int upstream_clear(vf_Upstream *u) {
    Py_CLEAR(u->pool);
    Py_CLEAR(u->key);
    Py_CLEAR(u->transport);
    Py_CLEAR(u->write);
    Py_CLEAR(u->exchange);
    Py_CLEAR(u->buffer);
    Py_CLEAR(u->body);
    return 0;
}

VF_GC_DEALLOC(upstream, vf_Upstream)

static PyMethodDef upstream_methods[] = {
    {"data_received", (PyCFunction)vf_upstream_data_received, METH_O,
     "the compiled fast path; anything else goes to _data_received"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef upstream_members[] = {
    OBJ(vf_Upstream, pool, NULL), OBJ(vf_Upstream, key, "(host, port)"),
    OBJ(vf_Upstream, exchange, "the exchange it carries, or None when idle"),
    OBJ(vf_Upstream, buffer, "the start of a response head that is not complete yet"),
    OBJ(vf_Upstream, body, "the body framing of the current response, after its head"),
    {"idle_since", T_DOUBLE, offsetof(vf_Upstream, idle_since), 0, NULL},
    {"uses", T_LONG, offsetof(vf_Upstream, uses), 0, NULL},
    FLAG(vf_Upstream, keep_alive),
    {"paused", T_BOOL, offsetof(vf_Upstream, paused), 0, "reading paused because the client reads slowly"},
    FLAG(vf_Upstream, closed),
    {"got_bytes", T_BOOL, offsetof(vf_Upstream, got_bytes), 0, "any response byte for the current exchange"},
    {NULL, 0, 0, 0, NULL},
};

static PyObject *upstream_get_transport(vf_Upstream *u, void *closure) { return Py_NewRef(u->transport); }

static int upstream_set_transport(vf_Upstream *u, PyObject *value, void *closure) {
    return vf_set_bound(&u->transport, &u->write, value, vf_s_write);
}

static PyGetSetDef upstream_getset[] = {
    {"transport", (getter)upstream_get_transport, (setter)upstream_set_transport, "the backend socket's transport",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

VF_CORE_TYPE(vf_UpstreamType, "UpstreamCore", vf_Upstream, upstream, upstream_methods, upstream_getset,
             "The fields and compiled data_received of a backend connection (upstream.UpstreamConn).")
