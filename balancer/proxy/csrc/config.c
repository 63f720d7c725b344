/* The compiled cores of the routing table's objects (config.py's Route, Pool, Backend): the fields the hot
 * path reads for every request, so it reads them as C fields. */
#include "hot.h"

#include <structmember.h>

static PyObject *route_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Route *r = (vf_Route *)type->tp_alloc(type, 0);
    if (r != NULL) {
        r->pool = Py_NewRef(Py_None);
        r->prefix = Py_NewRef(Py_None);
    }
    return (PyObject *)r;
}

static PyObject *pool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Pool *p = (vf_Pool *)type->tp_alloc(type, 0);
    if (p != NULL) {
        p->backends = Py_NewRef(Py_None);
        p->balancer = Py_NewRef(Py_None);
    }
    return (PyObject *)p;
}

static PyObject *backend_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Backend *b = (vf_Backend *)type->tp_alloc(type, 0);
    if (b != NULL) {
        b->st = Py_NewRef(Py_None);
        b->key = Py_NewRef(Py_None);
    }
    return (PyObject *)b;
}

static int route_traverse(vf_Route *r, visitproc visit, void *arg) {
    Py_VISIT(r->pool);
    return 0;
}
static int route_clear(vf_Route *r) {
    Py_CLEAR(r->pool);
    Py_CLEAR(r->prefix);
    return 0;
}
static int pool_traverse(vf_Pool *p, visitproc visit, void *arg) {
    Py_VISIT(p->backends);
    Py_VISIT(p->balancer);
    return 0;
}
static int pool_clear(vf_Pool *p) {
    Py_CLEAR(p->backends);
    Py_CLEAR(p->balancer);
    return 0;
}
static int backend_traverse(vf_Backend *b, visitproc visit, void *arg) {
    Py_VISIT(b->st);
    Py_VISIT(b->series_pending); /* a cycle: the dict's keys hold this backend */
    Py_VISIT(b->series_route);
    return 0;
}
static int backend_clear(vf_Backend *b) {
    Py_CLEAR(b->st);
    Py_CLEAR(b->key);
    Py_CLEAR(b->series);
    Py_CLEAR(b->series_pending);
    Py_CLEAR(b->series_route);
    return 0;
}

VF_GC_DEALLOC(route, vf_Route)
VF_GC_DEALLOC(pool, vf_Pool)
VF_GC_DEALLOC(backend, vf_Backend)

static PyMemberDef route_members[] = {
    OBJ(vf_Route, pool, "the Pool it sends to, or None"),
    OBJ(vf_Route, prefix, "path prefix (str)"),
    {"active", T_BOOL, offsetof(vf_Route, active), 0, "the tenant is active"},
    {NULL, 0, 0, 0, NULL},
};
static PyMemberDef pool_members[] = {
    OBJ(vf_Pool, backends, "enabled backends, weight > 0 (health and ejection are checked per request)"),
    OBJ(vf_Pool, balancer, "the algorithm's state"),
    FLAG(vf_Pool, sticky),
    {"needs_client_ip", T_BOOL, offsetof(vf_Pool, needs_client_ip), 0, "the algorithm uses the client address"},
    {NULL, 0, 0, 0, NULL},
};
static PyMemberDef backend_members[] = {
    OBJ(vf_Backend, st, "its BackendState"),
    OBJ(vf_Backend, key, "(host, port): the upstream pool's key"),
    {"draining", T_BOOL, offsetof(vf_Backend, draining), 0, "no new sessions (sticky ones finish)"},
    {NULL, 0, 0, 0, NULL},
};

VF_CORE_TYPE(vf_RouteType, "RouteCore", vf_Route, route, NULL, NULL,
             "The fields of a route the hot path reads (config.Route).")
VF_CORE_TYPE(vf_PoolType, "PoolCore", vf_Pool, pool, NULL, NULL,
             "The fields of a pool the hot path reads (config.Pool).")
VF_CORE_TYPE(vf_BackendType, "BackendCore", vf_Backend, backend, NULL, NULL,
             "The fields of a backend the hot path reads (config.Backend).")
