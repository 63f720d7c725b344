/* The common exchange in C (see hot.h for what "common" means and how everything else goes to Python).
 *
 * Each step below mirrors a Python method and is taken only when that method's outcome is the plain one;
 * otherwise the Python method is called with the state still untouched.  Mirrors (keep them in step):
 *   client_fast      ClientProtocol._data_received + _request      (protocol.py)
 *   exchange_start   Exchange.start + router.choose + dispatch + attach (exchange.py, router.py)
 *   upstream_fast    UpstreamConn._data_received                   (upstream.py)
 *   response_end     Exchange.on_response_end + UpstreamPool.release + Exchange.finish + exchange_done */
#include "hot.h"

static PyObject *call0(PyObject *obj, PyObject *name) { return PyObject_CallMethodNoArgs(obj, name); }

static PyObject *call1(PyObject *obj, PyObject *name, PyObject *arg) {
    return PyObject_CallMethodOneArg(obj, name, arg);
}

/* transport.write(data) through the method bound when the transport was set */
static int write_to(PyObject *write, PyObject *transport, PyObject *data) {
    PyObject *r = write != NULL ? PyObject_CallOneArg(write, data) : call1(transport, vf_s_write, data);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* None on success, NULL on error: the result of a Python call whose value is not needed */
static PyObject *done(PyObject *result) {
    if (result == NULL) return NULL;
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static inline vf_App *app_of(vf_Exchange *ex) { return (vf_App *)ex->app; } /* checked by client_fast */

/* --- request side ----------------------------------------------------------------------------------------- */

/* Whether every backend of the pool can take a new session, so the balancer picks among all of them
 * (router.choose's common case); otherwise the Python router decides. */
static int all_usable(PyObject *backends, double now) {
    if (!PyList_CheckExact(backends) || PyList_GET_SIZE(backends) == 0) return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(backends); i++) {
        PyObject *b = PyList_GET_ITEM(backends, i);
        if (!VF_IS(b, &vf_BackendType)) return 0;
        PyObject *st = ((vf_Backend *)b)->st;
        if (!Py_IS_TYPE(st, &vf_StateType) || ((vf_State *)st)->down || ((vf_State *)st)->ejected_until > now ||
            ((vf_Backend *)b)->draining)
            return 0;
    }
    return 1;
}

/* An idle pooled connection to the backend (most recently used first), or NULL: a new reference. Closed ones
 * met on the way are dropped, as UpstreamPool's users do. */
static vf_Upstream *idle_connection(vf_App *app, vf_Backend *backend) {
    if (!VF_IS(app->upstreams, &vf_UpstreamPoolType)) {
        PyErr_SetString(PyExc_TypeError, "app.upstreams is an UpstreamPool");
        return NULL;
    }
    PyObject *idle = ((vf_UpstreamPool *)app->upstreams)->idle;
    PyObject *stack = PyDict_Check(idle) ? PyDict_GetItemWithError(idle, backend->key) : NULL;
    vf_Upstream *conn = NULL;
    while (stack != NULL && PyList_CheckExact(stack) && PyList_GET_SIZE(stack) > 0) {
        Py_ssize_t last = PyList_GET_SIZE(stack) - 1;
        PyObject *item = Py_NewRef(PyList_GET_ITEM(stack, last));
        if (PyList_SetSlice(stack, last, last + 1, NULL) < 0) {
            Py_DECREF(item);
            break;
        }
        if (VF_IS(item, &vf_UpstreamType) && !((vf_Upstream *)item)->closed) {
            conn = (vf_Upstream *)item;
            break;
        }
        Py_DECREF(item);
    }
    return conn;
}

/* Exchange.attach on a pooled connection, for a request without a body */
static int attach(vf_Exchange *ex, vf_Client *client, vf_Upstream *conn, double now) {
    Py_SETREF(ex->conn, Py_NewRef((PyObject *)conn));
    Py_SETREF(conn->exchange, Py_NewRef((PyObject *)ex));
    conn->uses++;
    ex->deadline = now + app_of(ex)->upstream_timeout;
    if (write_to(conn->write, conn->transport, ((vf_Request *)ex->req)->upstream) < 0) return -1;
    PyObject *r;
    if (client->write_paused) {
        conn->paused = 1;
        if ((r = call0(conn->transport, vf_s_pause_reading)) == NULL) return -1;
        Py_DECREF(r);
    }
    if (client->read_paused || client->reads_held) {
        if ((r = call0((PyObject *)client, vf_s_resume_reading_if_possible)) == NULL) return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* Exchange.start for a request without a body: route -> pool -> backend -> pooled connection. */
static PyObject *exchange_start(vf_Exchange *ex, vf_Client *client) {
    double now = vf_clock();
    ex->started = now;
    PyObject *route = ex->route;
    if (!VF_IS(route, &vf_RouteType) || !((vf_Route *)route)->active) goto python;
    PyObject *pool = ((vf_Route *)route)->pool;
    if (!VF_IS(pool, &vf_PoolType)) goto python;
    vf_Pool *p = (vf_Pool *)pool;
    if (p->sticky || p->needs_client_ip || !all_usable(p->backends, now)) goto python;
    PyObject *backend;
    if (VF_IS(p->balancer, &vf_RoundRobinType)) {
        backend = Py_NewRef(vf_round_robin_pick((vf_RoundRobin *)p->balancer, p->backends));
    } else {
        PyObject *now_o = PyFloat_FromDouble(now);
        if (now_o == NULL) return NULL;
        backend = PyObject_CallMethodObjArgs(p->balancer, vf_s_pick, p->backends, vf_s_empty_str, now_o, NULL);
        Py_DECREF(now_o);
        if (backend == NULL) return NULL;
    }
    if (!VF_IS(backend, &vf_BackendType)) {
        Py_DECREF(backend);
        PyErr_SetString(PyExc_TypeError, "the balancer picks a Backend");
        return NULL;
    }
    vf_Upstream *conn = idle_connection(app_of(ex), (vf_Backend *)backend);
    if (conn == NULL) { /* a new connection: Python connects (and counts the attempt) */
        PyObject *now_o = PyErr_Occurred() ? NULL : PyFloat_FromDouble(now), *r = NULL;
        if (now_o != NULL) r = PyObject_CallMethodObjArgs((PyObject *)ex, vf_s_dispatch, backend, now_o, NULL);
        Py_XDECREF(now_o);
        Py_DECREF(backend);
        return done(r);
    }
    vf_State *st = (vf_State *)((vf_Backend *)backend)->st; /* all_usable checked the type */
    Py_SETREF(ex->backend, backend);
    ex->attempts++;
    ex->holding = 1;
    st->inflight++;
    int failed = attach(ex, client, conn, now);
    Py_DECREF(conn);
    if (failed) return NULL;
    Py_RETURN_NONE;
python:
    return done(call0((PyObject *)ex, vf_s_start));
}

static PyObject *slow_client(vf_Client *self, PyObject *data, PyObject *req) {
    return PyObject_CallMethodObjArgs((PyObject *)self, vf_s_data_received, data, req, NULL);
}

PyObject *vf_client_data_received(vf_Client *self, PyObject *data) {
    if (!PyBytes_CheckExact(data) || self->tunnel != Py_None || self->closing || PyBytes_GET_SIZE(self->buffer) ||
        self->body != Py_None || self->active != Py_None || vf_exchange_class == NULL ||
        !VF_IS(self->app, &vf_AppType) || !PyBytes_Check(self->peer) || !PyBytes_Check(self->scheme) ||
        vf_queue_len(self->queue) != 0)
        return slow_client(self, data, Py_None);
    PyObject *req = vf_parse_request_at(data, 0, self->max_head, self->peer, self->scheme, self->trusted);
    if (req == NULL) {
        if (!PyErr_ExceptionMatches(vf_HeadError)) return NULL;
        PyErr_Clear(); /* Python parses it again and answers the error */
        return slow_client(self, data, Py_None);
    }
    vf_Request *r = (vf_Request *)req;
    if (req == Py_None || r->upgrade != Py_None || r->chunked || r->content_length > 0 ||
        r->end != PyBytes_GET_SIZE(data)) {
        PyObject *result = slow_client(self, data, req);
        Py_DECREF(req);
        return result;
    }
    self->head_deadline = 0.0;
    self->in_head = 0;
    vf_Exchange *ex = vf_exchange_make(vf_exchange_class, (PyObject *)self, req);
    Py_DECREF(req);
    if (ex == NULL) return NULL;
    vf_App *app = (vf_App *)self->app;
    PyObject *route = NULL;
    if (app->exact != NULL && app->wildcard != NULL)
        route = vf_lookup_route(app->exact, app->wildcard, r->host, r->path);
    else
        PyErr_SetString(PyExc_TypeError, "app.snapshot is set");
    if (route == NULL) {
        Py_DECREF(ex);
        return NULL;
    }
    Py_SETREF(ex->route, route);
    ex->body_done = 1;
    Py_SETREF(self->active, Py_NewRef((PyObject *)ex));
    PyObject *result = exchange_start(ex, self);
    Py_DECREF(ex);
    return result;
}

/* --- response side ---------------------------------------------------------------------------------------- */

/* UpstreamPool.release for a connection whose pool keeps it: 1 when kept, 0 when Python must decide */
static int keep_idle(vf_Upstream *conn, double now) {
    if (!VF_IS(conn->pool, &vf_UpstreamPoolType)) return 0;
    vf_UpstreamPool *pool = (vf_UpstreamPool *)conn->pool;
    PyObject *stack = PyDict_Check(pool->idle) ? PyDict_GetItemWithError(pool->idle, conn->key) : NULL;
    if (stack == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyList_CheckExact(stack) || conn->paused || PyList_GET_SIZE(stack) >= pool->max_idle) return 0;
    Py_SETREF(conn->exchange, Py_NewRef(Py_None));
    conn->idle_since = now;
    return PyList_Append(stack, (PyObject *)conn) < 0 ? -1 : 1;
}

/* Exchange.finish of a response that did not fail, then ClientProtocol.exchange_done */
static PyObject *finish(vf_Exchange *ex, double now) {
    ex->resp_done = 1;
    PyObject *st = ((vf_Backend *)ex->backend)->st; /* the upstream fast path checked the backend's type */
    if (!Py_IS_TYPE(st, &vf_StateType)) {
        PyErr_SetString(PyExc_TypeError, "backend.st is a BackendState");
        return NULL;
    }
    vf_State *s = (vf_State *)st;
    if (ex->holding) {
        ex->holding = 0;
        s->inflight--;
    }
    double elapsed = now - ex->started;
    vf_state_observe(s, now, elapsed * 1000.0, 0);
    s->fails = 0;
    PyObject *metrics = app_of(ex)->metrics;
    PyObject *pending = VF_IS(metrics, &vf_MetricsType) ? ((vf_Metrics *)metrics)->pending : NULL;
    if (pending == NULL || !PyDict_Check(pending)) {
        PyErr_SetString(PyExc_TypeError, "app.metrics is a Metrics whose pending is a dict");
        return NULL;
    }
    if (vf_record(pending, ex->route, ex->backend, ex->status, ex->body_in, ex->resp_bytes, elapsed, 0) < 0)
        return NULL;
    PyObject *access_log = app_of(ex)->access_log;
    if (access_log != Py_None) {
        PyObject *elapsed_o = PyFloat_FromDouble(elapsed);
        PyObject *r = elapsed_o == NULL ? NULL : PyObject_CallFunctionObjArgs(access_log, ex, elapsed_o, NULL);
        Py_XDECREF(elapsed_o);
        if (r == NULL) return NULL;
        Py_DECREF(r);
    }
    vf_Client *client = (vf_Client *)ex->client;
    if (!ex->close_after && !client->closed && !client->read_paused && client->active == (PyObject *)ex &&
        vf_queue_len(client->queue) == 0) {
        Py_SETREF(client->active, Py_NewRef(Py_None));
        client->idle_since = now;
        Py_RETURN_NONE;
    }
    PyObject *now_o = PyFloat_FromDouble(now);
    if (now_o == NULL) return NULL;
    PyObject *r = PyObject_CallMethodObjArgs(ex->client, vf_s_exchange_done, ex, ex->close_after ? Py_True : Py_False,
                                             now_o, NULL);
    Py_DECREF(now_o);
    return done(r);
}

/* Exchange.on_response_end when the connection goes back to the pool and the response did not fail */
static PyObject *response_end(vf_Exchange *ex, vf_Upstream *conn, int keep_alive) {
    if (!keep_alive || !ex->body_done || conn->closed || ex->status >= 500)
        return done(PyObject_CallMethodObjArgs((PyObject *)ex, vf_s_on_response_end, conn,
                                               keep_alive ? Py_True : Py_False, NULL));
    double now = vf_clock();
    int kept = keep_idle(conn, now);
    if (kept < 0) return NULL;
    Py_SETREF(ex->conn, Py_NewRef(Py_None));
    if (!kept) { /* the pool closes it, or resumes its reading first */
        PyObject *now_o = PyFloat_FromDouble(now), *r = NULL;
        if (now_o != NULL) r = PyObject_CallMethodObjArgs(app_of(ex)->upstreams, vf_s_release, conn, now_o, NULL);
        Py_XDECREF(now_o);
        if (r == NULL) return NULL;
        Py_DECREF(r);
    }
    return finish(ex, now);
}

static PyObject *slow_upstream(vf_Upstream *self, PyObject *data) {
    return call1((PyObject *)self, vf_s_data_received, data);
}

PyObject *vf_upstream_data_received(vf_Upstream *self, PyObject *data) {
    PyObject *exo = self->exchange;
    if (!PyBytes_CheckExact(data) || exo == Py_None || !VF_IS(exo, &vf_ExchangeType) ||
        self->body != Py_None || PyBytes_GET_SIZE(self->buffer) ||
        !VF_IS(((vf_Exchange *)exo)->app, &vf_AppType) || !PyBytes_Check(((vf_Exchange *)exo)->set_cookie))
        return slow_upstream(self, data);
    vf_Exchange *ex = (vf_Exchange *)exo;
    if (!VF_IS(ex->backend, &vf_BackendType)) return slow_upstream(self, data);
    vf_Client *client = (vf_Client *)ex->client;
    vf_Request *req = (vf_Request *)ex->req;
    long flags = req->flags | ((ex->close_after || client->closing) ? VF_F_CLOSE : 0);
    vf_response head;
    int parsed = vf_parse_response_at(data, 0, flags, req->request_id, ex->set_cookie, &head);
    if (parsed < 0) {
        if (!PyErr_ExceptionMatches(vf_HeadError)) return NULL;
        PyErr_Clear(); /* Python parses it again and drops the connection */
        return slow_upstream(self, data);
    }
    if (parsed == 0) { /* the head is not complete yet */
        self->got_bytes = 1;
        Py_SETREF(self->buffer, Py_NewRef(data));
        Py_RETURN_NONE;
    }
    Py_INCREF(ex); /* the exchange outlives the writes below even if the connection lets it go */
    ex->status = head.status;
    ex->resp_bytes = head.body_bytes;
    ex->resp_started = 1;
    self->keep_alive = (char)head.keep_alive;
    if (head.close) ex->close_after = 1;
    if (write_to(client->write, client->transport, head.out) < 0) goto error;
    PyObject *r;
    if (head.framer != NULL) { /* a body follows: Python streams it */
        self->got_bytes = 1;
        Py_SETREF(self->body, Py_NewRef((PyObject *)head.framer));
        if (head.framer->mode == VF_EOF) {
            ex->until_close = 1;
            ex->resp_chunked = !req->http10;
        }
        ex->deadline = vf_clock() + app_of(ex)->upstream_timeout; /* progress */
        r = Py_NewRef(Py_None);
    } else {
        self->got_bytes = 0; /* for the next exchange */
        r = response_end(ex, self, head.keep_alive && head.end == PyBytes_GET_SIZE(data));
    }
    Py_DECREF(ex);
    Py_DECREF(head.out);
    Py_XDECREF(head.framer);
    return r;
error:
    Py_DECREF(ex);
    Py_DECREF(head.out);
    Py_XDECREF(head.framer);
    return NULL;
}
