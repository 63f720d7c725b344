/* The compiled cores of the worker's containers that every exchange reads: the upstream connection pool's
 * idle stacks (upstream.UpstreamPool) and the metrics not yet flushed (metrics.Metrics). */
#include "hot.h"

#include <structmember.h>

static PyObject *upstream_pool_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_UpstreamPool *p = (vf_UpstreamPool *)type->tp_alloc(type, 0);
    if (p != NULL) p->idle = Py_NewRef(Py_None);
    return (PyObject *)p;
}

static int upstream_pool_traverse(vf_UpstreamPool *p, visitproc visit, void *arg) {
    Py_VISIT(p->idle);
    return 0;
}

static int upstream_pool_clear(vf_UpstreamPool *p) {
    Py_CLEAR(p->idle);
    return 0;
}

static PyObject *metrics_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    vf_Metrics *m = (vf_Metrics *)type->tp_alloc(type, 0);
    if (m != NULL) m->pending = Py_NewRef(Py_None);
    return (PyObject *)m;
}

static int metrics_traverse(vf_Metrics *m, visitproc visit, void *arg) {
    Py_VISIT(m->pending);
    return 0;
}

static int metrics_clear(vf_Metrics *m) {
    Py_CLEAR(m->pending);
    return 0;
}

VF_GC_DEALLOC(upstream_pool, vf_UpstreamPool)
VF_GC_DEALLOC(metrics, vf_Metrics)

static PyMemberDef upstream_pool_members[] = {
    OBJ(vf_UpstreamPool, idle, "(host, port) -> idle connections, most recently used last"),
    {"max_idle", T_PYSSIZET, offsetof(vf_UpstreamPool, max_idle), 0, "idle connections kept per backend"},
    {NULL, 0, 0, 0, NULL},
};

static PyMemberDef metrics_members[] = {
    OBJ(vf_Metrics, pending, "(route, backend) -> Series counted since the last flush"),
    {NULL, 0, 0, 0, NULL},
};

VF_CORE_TYPE(vf_UpstreamPoolType, "UpstreamPoolCore", vf_UpstreamPool, upstream_pool, NULL, NULL,
             "The fields of the upstream connection pool the hot path reads (upstream.UpstreamPool).")
VF_CORE_TYPE(vf_MetricsType, "MetricsCore", vf_Metrics, metrics, NULL, NULL,
             "The metrics the hot path adds to (metrics.Metrics).")
