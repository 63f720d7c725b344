/* The hot path's shared pieces: interned names, route lookup, module set-up (see hot.h). */
#include "hot.h"

#include <time.h>

PyTypeObject *vf_exchange_class;
static PyTypeObject *deque_type;
PyObject *vf_s_data_received, *vf_s_start, *vf_s_dispatch, *vf_s_write, *vf_s_exact, *vf_s_wildcard,
    *vf_s_prefix, *vf_s_pick, *vf_s_pause_reading, *vf_s_resume_reading_if_possible,
    *vf_s_on_response_end, *vf_s_exchange_done, *vf_s_release, *vf_s_empty_str,
    *vf_s_empty;

int vf_set_bound(PyObject **field, PyObject **method, PyObject *value, PyObject *name) {
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete this attribute");
        return -1;
    }
    PyObject *bound = NULL;
    if (value != Py_None && (bound = PyObject_GetAttr(value, name)) == NULL) return -1;
    Py_XSETREF(*field, Py_NewRef(value));
    Py_XSETREF(*method, bound);
    return 0;
}

double vf_clock(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail for CLOCK_MONOTONIC */
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

PyObject *vf_clock_py(PyObject *self, PyObject *unused) { return PyFloat_FromDouble(vf_clock()); }

Py_ssize_t vf_queue_len(PyObject *queue) {
    if (queue == Py_None) return 0;
    if (Py_IS_TYPE(queue, deque_type)) return Py_SIZE(queue); /* a deque's size is its length */
    Py_ssize_t n = PyObject_Size(queue);
    if (n < 0) { /* not a sized queue: the caller takes the Python path, which will say what is wrong */
        PyErr_Clear();
        return 1;
    }
    return n;
}

/* --- route lookup ------------------------------------------------------------------------------- */

static PyObject *first_match(PyObject *routes, PyObject *path) {
    if (routes == NULL || !PyList_Check(routes)) return Py_NewRef(Py_None);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(routes); i++) {
        PyObject *route = PyList_GET_ITEM(routes, i);
        PyObject *prefix = VF_IS(route, &vf_RouteType) ? Py_NewRef(((vf_Route *)route)->prefix)
                                                                     : PyObject_GetAttr(route, vf_s_prefix);
        if (prefix == NULL) return NULL;
        Py_ssize_t match = PyUnicode_Tailmatch(path, prefix, 0, PY_SSIZE_T_MAX, -1);
        Py_DECREF(prefix);
        if (match < 0) return NULL;
        if (match) return Py_NewRef(route);
    }
    return Py_NewRef(Py_None);
}

PyObject *vf_lookup_route(PyObject *exact, PyObject *wildcard, PyObject *host, PyObject *path) {
    PyObject *route = first_match(PyDict_GetItemWithError(exact, host), path);
    if (route != Py_None || PyErr_Occurred()) return route;
    Py_DECREF(route);
    Py_ssize_t n = PyUnicode_GET_LENGTH(host), dot = PyUnicode_FindChar(host, '.', 0, n, 1);
    while (dot >= 0) {
        PyObject *suffix = PyUnicode_Substring(host, dot, n);
        if (suffix == NULL) return NULL;
        route = first_match(PyDict_GetItemWithError(wildcard, suffix), path);
        Py_DECREF(suffix);
        if (route != Py_None || PyErr_Occurred()) return route;
        Py_DECREF(route);
        dot = PyUnicode_FindChar(host, '.', dot + 1, n, 1);
    }
    if (dot == -2) return NULL;
    return Py_NewRef(Py_None);
}

/* route_lookup(exact, wildcard, host, path) -> Route | None */
PyObject *vf_route_lookup(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyDict_Check(args[0]) || !PyDict_Check(args[1]) || !PyUnicode_Check(args[2]) ||
        !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "route_lookup(exact: dict, wildcard: dict, host: str, path: str)");
        return NULL;
    }
    return vf_lookup_route(args[0], args[1], args[2], args[3]);
}

PyObject *vf_use_exchange_class(PyObject *self, PyObject *cls) {
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &vf_ExchangeType)) {
        PyErr_SetString(PyExc_TypeError, "use_exchange_class(a subclass of ExchangeCore)");
        return NULL;
    }
    Py_XSETREF(vf_exchange_class, (PyTypeObject *)Py_NewRef(cls));
    Py_RETURN_NONE;
}

/* --- module set-up -------------------------------------------------------------------------------------------- */

#define INTERN(var, text) ((var = PyUnicode_InternFromString(text)) == NULL)

int vf_hot_init(PyObject *m) {
    if (INTERN(vf_s_data_received, "_data_received") || INTERN(vf_s_start, "start") ||
        INTERN(vf_s_dispatch, "dispatch") || INTERN(vf_s_write, "write") ||
        INTERN(vf_s_exact, "exact") || INTERN(vf_s_wildcard, "wildcard") || INTERN(vf_s_prefix, "prefix") ||
        INTERN(vf_s_pick, "pick") || INTERN(vf_s_pause_reading, "pause_reading") ||
        INTERN(vf_s_resume_reading_if_possible, "resume_reading_if_possible") ||
        INTERN(vf_s_on_response_end, "on_response_end") ||
        INTERN(vf_s_exchange_done, "exchange_done") ||
        INTERN(vf_s_release, "release") || INTERN(vf_s_empty_str, ""))
        return -1;
    if (vf_series_init(m) < 0) return -1;
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL) return -1;
    deque_type = (PyTypeObject *)PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque_type == NULL) return -1;
    if ((vf_s_empty = PyBytes_FromStringAndSize(NULL, 0)) == NULL) return -1;
    if (PyType_Ready(&vf_StateType) < 0 || PyType_Ready(&vf_ExchangeType) < 0 || PyType_Ready(&vf_ClientType) < 0 ||
        PyType_Ready(&vf_UpstreamType) < 0 || PyType_Ready(&vf_AppType) < 0 || PyType_Ready(&vf_RoundRobinType) < 0 ||
        PyType_Ready(&vf_RouteType) < 0 || PyType_Ready(&vf_PoolType) < 0 || PyType_Ready(&vf_BackendType) < 0 ||
        PyType_Ready(&vf_UpstreamPoolType) < 0 || PyType_Ready(&vf_MetricsType) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "BackendState", (PyObject *)&vf_StateType) < 0 ||
        PyModule_AddObjectRef(m, "ExchangeCore", (PyObject *)&vf_ExchangeType) < 0 ||
        PyModule_AddObjectRef(m, "ClientCore", (PyObject *)&vf_ClientType) < 0 ||
        PyModule_AddObjectRef(m, "UpstreamCore", (PyObject *)&vf_UpstreamType) < 0 ||
        PyModule_AddObjectRef(m, "AppCore", (PyObject *)&vf_AppType) < 0 ||
        PyModule_AddObjectRef(m, "RoundRobinCore", (PyObject *)&vf_RoundRobinType) < 0 ||
        PyModule_AddObjectRef(m, "RouteCore", (PyObject *)&vf_RouteType) < 0 ||
        PyModule_AddObjectRef(m, "PoolCore", (PyObject *)&vf_PoolType) < 0 ||
        PyModule_AddObjectRef(m, "BackendCore", (PyObject *)&vf_BackendType) < 0 ||
        PyModule_AddObjectRef(m, "UpstreamPoolCore", (PyObject *)&vf_UpstreamPoolType) < 0 ||
        PyModule_AddObjectRef(m, "MetricsCore", (PyObject *)&vf_MetricsType) < 0)
        return -1;
    PyObject *decay = PyFloat_FromDouble(VF_EWMA_DECAY_S), *penalty = PyFloat_FromDouble(VF_ERROR_PENALTY_MS);
    int failed = decay == NULL || penalty == NULL || PyModule_AddObjectRef(m, "EWMA_DECAY_S", decay) < 0 ||
                 PyModule_AddObjectRef(m, "ERROR_PENALTY_MS", penalty) < 0;
    Py_XDECREF(decay);
    Py_XDECREF(penalty);
    return failed ? -1 : 0;
}
