/* The proxy's per-request state as compiled types, and its hot path (hot.c, fastpath.c).
 *
 * The Python classes of the proxy (ClientProtocol, UpstreamConn, Exchange, in balancer/proxy) subclass
 * these cores, so their hot fields are C fields that Python reads and writes as attributes.  The cores'
 * data_received handles the common exchange in C: one whole request without a body, routed, sent on a
 * pooled connection, and a response that arrives whole.  Anything else (a body, pipelining, a partial
 * head, an error, a retry, a new connection, a sticky or client-address pool, a backend that is not
 * usable) calls the Python method that handles it, with the state untouched, so the Python code stays
 * the one definition of behaviour and the C code only skips the interpreter on the common path. */
#ifndef VF_HOT_H
#define VF_HOT_H

#include "codec.h"

#define VF_EWMA_DECAY_S 10.0     /* time constant of the latency average */
#define VF_ERROR_PENALTY_MS 500.0 /* an error or 5xx counts as at least this slow */

/* Per-backend runtime state (balancer/proxy/state.py) */
typedef struct {
    PyObject_HEAD
    PyObject *id;
    long inflight, fails, ejections;
    double ewma, ewma_at, ejected_until;
    char down;
} vf_State;

typedef struct {
    PyObject_HEAD
    PyObject *client, *app, *req, *request_id, *route, *backend, *conn, *set_cookie, *body_buf, *retained;
    double deadline, started;
    long long body_in, resp_bytes;
    int early_status, attempts, status;
    char close_after, body_done, holding, resp_started, resp_done, resp_chunked, until_close;
} vf_Exchange;

typedef struct {
    PyObject_HEAD
    PyObject *app, *transport, *active, *queue, *buffer, *body, *reading, *tunnel, *peer, *scheme;
    PyObject *write; /* transport.write, bound when transport is set */
    double head_deadline, idle_since;
    Py_ssize_t max_head;
    char closing, closed, write_paused, read_paused, reads_held, in_head, trusted;
} vf_Client;

typedef struct {
    PyObject_HEAD
    PyObject *pool, *key, *transport, *exchange, *buffer, *body;
    PyObject *write; /* transport.write, bound when transport is set */
    double idle_since;
    long uses;
    char keep_alive, paused, closed, got_bytes;
} vf_Upstream;

/* One worker's proxy state (app.ProxyApp): what every exchange reads */
typedef struct {
    PyObject_HEAD
    PyObject *snapshot, *upstreams, *metrics, *access_log;
    PyObject *exact, *wildcard; /* snapshot.exact and .wildcard (dicts) when snapshot is set, or NULL */
    double upstream_timeout;
} vf_App;

/* upstream.UpstreamPool and metrics.Metrics: the containers every exchange reads */
typedef struct {
    PyObject_HEAD
    PyObject *idle;
    Py_ssize_t max_idle;
} vf_UpstreamPool;

typedef struct {
    PyObject_HEAD
    PyObject *pending;
} vf_Metrics;

/* algorithms.RoundRobin, the default algorithm: picked without a Python call */
typedef struct {
    PyObject_HEAD
    Py_ssize_t next;
} vf_RoundRobin;

/* The routing table's objects (config.py) */
typedef struct {
    PyObject_HEAD
    PyObject *pool, *prefix;
    char active;
} vf_Route;

typedef struct {
    PyObject_HEAD
    PyObject *backends, *balancer;
    char sticky, needs_client_ip;
} vf_Pool;

typedef struct {
    PyObject_HEAD
    PyObject *st, *key;
    /* the Series its last request was added to, with the pending dict and route it is under (or NULL): the
     * next request of the same route before the next flush adds to it without the dict lookup */
    PyObject *series, *series_pending, *series_route;
    char draining;
} vf_Backend;

extern PyTypeObject vf_RouteType, vf_PoolType, vf_BackendType, vf_UpstreamPoolType, vf_MetricsType;
extern PyTypeObject vf_StateType, vf_ExchangeType, vf_ClientType, vf_UpstreamType, vf_AppType, vf_RoundRobinType;
extern PyTypeObject *vf_exchange_class; /* the Python subclass the fast path instantiates (use_exchange_class) */

/* The compiled cores are GC types whose deallocation only clears their fields, and whose type objects
 * differ only in names, tables and doc: prefix##_new/_traverse/_clear/_dealloc and prefix##_members. */
#define VF_GC_DEALLOC(prefix, type)             \
    static void prefix##_dealloc(type *o) {     \
        PyObject_GC_UnTrack(o);                 \
        prefix##_clear(o);                      \
        Py_TYPE(o)->tp_free((PyObject *)o);     \
    }
#define VF_CORE_TYPE(var, pyname, type, prefix, methods, getset, doc)              \
    PyTypeObject var = {                                                           \
        PyVarObject_HEAD_INIT(NULL, 0).tp_name = "balancer.proxy._codec." pyname, \
        .tp_basicsize = sizeof(type),                                              \
        .tp_dealloc = (destructor)prefix##_dealloc,                                \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, \
        .tp_doc = doc,                                                             \
        .tp_traverse = (traverseproc)prefix##_traverse,                            \
        .tp_clear = (inquiry)prefix##_clear,                                       \
        .tp_methods = methods,                                                     \
        .tp_getset = getset,                                                       \
        .tp_members = prefix##_members,                                            \
        .tp_new = prefix##_new,                                                    \
    };

/* Whether o is a type or a direct subclass of it (the Python classes over the cores), without the MRO walk of
 * PyObject_TypeCheck on the common path */
#define VF_IS(o, type) \
    (Py_IS_TYPE(o, type) || Py_TYPE(o)->tp_base == (type) || PyType_IsSubtype(Py_TYPE(o), type))

/* member table entries of the cores */
#define OBJ(type, field, doc) {#field, T_OBJECT, offsetof(type, field), 0, doc}
#define FLAG(type, field) {#field, T_BOOL, offsetof(type, field), 0, NULL}

/* interned attribute names */
extern PyObject *vf_s_data_received, *vf_s_start, *vf_s_dispatch, *vf_s_write, *vf_s_exact,
    *vf_s_wildcard, *vf_s_prefix, *vf_s_pick, *vf_s_pause_reading, *vf_s_resume_reading_if_possible,
    *vf_s_on_response_end, *vf_s_exchange_done, *vf_s_release, *vf_s_empty_str,
    *vf_s_empty;

int vf_hot_init(PyObject *module);
/* The proxy's clock, in seconds (CLOCK_MONOTONIC, microsecond precision): exchange start times, latencies,
 * deadlines, idle times and ejections all use it, from C and from Python (codec.clock). loop.time() is
 * libuv's clock in whole milliseconds, which would measure a fast backend's latency as 0. */
double vf_clock(void);
PyObject *vf_clock_py(PyObject *self, PyObject *unused);
/* Sets *field to value and *method to value.<name> bound (NULL when value is None): a getset setter's work
 * for a field whose method the hot path calls on every request. */
int vf_set_bound(PyObject **field, PyObject **method, PyObject *value, PyObject *name);
/* The length of a pipeline queue (a deque, or None; 1 for something without a length) */
Py_ssize_t vf_queue_len(PyObject *queue);
vf_Exchange *vf_exchange_make(PyTypeObject *type, PyObject *client, PyObject *req);
void vf_state_observe(vf_State *s, double now, double latency_ms, int failed);
/* The route for host and path (exact host, then wildcard suffixes; the first route whose prefix matches, the
 * lists being sorted longest prefix first): a new reference, Py_None, or NULL with an error set. */
PyObject *vf_lookup_route(PyObject *exact, PyObject *wildcard, PyObject *host, PyObject *path);
/* Adds a request to the Series metrics.pending[(route, backend)] (series.c); 0, or -1 with an error set. */
int vf_record(PyObject *pending, PyObject *route, PyObject *backend, long status, long long bytes_in,
              long long bytes_out, double elapsed_s, int error);
int vf_series_init(PyObject *module);
#define VF_N_SLOTS 24

/* The next backend of usable (a non-empty list): a borrowed reference */
PyObject *vf_round_robin_pick(vf_RoundRobin *self, PyObject *usable);

PyObject *vf_client_data_received(vf_Client *self, PyObject *data);
PyObject *vf_upstream_data_received(vf_Upstream *self, PyObject *data);

PyObject *vf_route_lookup(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *vf_record_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *vf_use_exchange_class(PyObject *self, PyObject *cls);

#endif
